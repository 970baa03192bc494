import numpy as np
import pytest
import torch

from monitor.depth import get_estimator, known_estimators, select_device
from monitor.depth.shading import in_plane_direction, integrate_two_sided, smooth_background
from monitor.errors import MonitorError
from monitor.results import Light


def _bump(h=160, w=200, cx=100, cy=80, sigma=12.0, amp=3.0):
    y, x = np.mgrid[0:h, 0:w] + 0.5
    return amp * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))


@pytest.mark.parametrize("direction", [(1.0, 0.0), (-1.0, 0.0), (0.6, -0.8), (0.0, 1.0)])
def test_integrate_two_sided_recovers_a_bump(direction):
    h = _bump(h=320, w=400, cx=200, cy=160)
    gy, gx = np.gradient(h)
    slope = gx * direction[0] + gy * direction[1]
    rec, linear = integrate_two_sided(torch.tensor(slope, dtype=torch.float32), direction)
    rec = rec.numpy()
    assert np.corrcoef(rec.ravel(), h.ravel())[0, 1] > 0.85
    assert np.corrcoef(linear.numpy().ravel(), h.ravel())[0, 1] > 0.85
    assert np.unravel_index(np.argmax(rec), rec.shape) == pytest.approx((160, 200), abs=2)
    assert 0.6 * h.max() < rec.max() < 1.1 * h.max()


def test_two_sided_integration_drops_the_tail_of_an_unbalanced_slope():
    # a bump whose far flank reads 30 % weaker (as shading non-linearity does):
    # one-sided integration leaves a long tail, the two-sided one does not
    h = _bump(h=320, w=400, cx=200, cy=160)
    gy, gx = np.gradient(h)
    slope = np.where(gx < 0, 0.7 * gx, gx)
    rec, linear = integrate_two_sided(torch.tensor(slope, dtype=torch.float32), (1.0, 0.0))
    tail = (slice(150, 170), slice(260, 330))  # beyond the bump along the light
    lin_tail = np.abs(linear.numpy()[tail]).max()
    assert lin_tail > 0.05
    assert np.abs(rec.numpy()[tail]).max() < 0.2 * lin_tail
    assert rec.numpy()[160, 200] > 1.0


def test_light_vector_convention():
    # 0 = from the right, 90 = from the top (y down, so negative y), 180 = from the left
    assert Light(0, 0).vector() == pytest.approx([1, 0, 0], abs=1e-9)
    assert Light(90, 0).vector() == pytest.approx([0, -1, 0], abs=1e-9)
    assert Light(180, 0).vector() == pytest.approx([-1, 0, 0], abs=1e-9)
    ux, uy, gain = in_plane_direction(Light(180, 45))
    assert (ux, uy, gain) == pytest.approx((-1, 0, 1), abs=1e-9)
    with pytest.raises(MonitorError, match="frontal"):
        in_plane_direction(Light(0, 89))


def test_smooth_background_ignores_zero_weight_pixels():
    x = torch.ones(1, 64, 64)
    w = torch.ones(64, 64)
    x[0, 20:30, 20:30] = 100.0
    w[20:30, 20:30] = 0
    bg = smooth_background(x, w, 10.0)
    assert torch.allclose(bg, torch.ones_like(bg), atol=1e-3)


@pytest.mark.parametrize("size", [1, 3, 24, 64, 96])
def test_smooth_background_works_on_images_smaller_than_its_scale(size):
    # a background scale wider than the image (the pair model's 32 px on a small
    # crop): the mean is over the image itself, still ignoring zero weights, and
    # aligned (a ramp's background stays a centred, symmetric, in-range ramp)
    x = torch.full((2, size, size + 2), 5.0)
    w = torch.ones(size, size + 2)
    if size > 2:
        x[:, : size // 2] = 999.0
        w[: size // 2] = 0
    bg = smooth_background(x, w, 32.0)
    assert bg.shape == x.shape
    assert torch.allclose(bg, torch.full_like(bg, 5.0), atol=1e-3)
    ramp = torch.linspace(-1.0, 1.0, size).repeat(size, 1) if size > 1 else torch.zeros(1, 1)
    bg = smooth_background(ramp, torch.ones_like(ramp), 32.0)
    assert bg.shape == ramp.shape
    assert float(bg.min()) >= -1 - 1e-6 and float(bg.max()) <= 1 + 1e-6
    assert torch.allclose(bg, -bg.flip(-1), atol=1e-4)  # no shift left or right


def _render(height, albedo, light):
    gy, gx = np.gradient(height)
    n = np.stack([-gx, -gy, np.ones_like(gx)], axis=-1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    s = np.clip(n @ light.vector(), 0, None)
    return (albedo[..., None] * (0.1 + 0.9 * s)[..., None] * np.ones(3)).astype(np.float32)


def test_shading_estimator_sees_a_bump_lit_from_the_left():
    light = Light(180, 25)
    h = _bump(h=400, w=480, cx=240, cy=200, amp=4.0)
    flat = np.full(h.shape, 0.5)
    est = get_estimator("shading", "cpu")
    d = est.estimate(_render(h, flat, light), light)
    assert d.height.shape == h.shape
    # the part of the bump perpendicular to the light is invisible: ~0.9, not 1
    assert np.corrcoef(d.height.ravel(), h.ravel())[0, 1] > 0.85
    assert np.unravel_index(np.argmax(d.height), h.shape) == pytest.approx((200, 240), abs=6)
    assert d.model_id == "monitor/shading-v1"


def test_registry_and_devices():
    assert "shading" in known_estimators()
    with pytest.raises(MonitorError, match="unknown depth estimator"):
        get_estimator("nope")
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(MonitorError):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(MonitorError, match="cuda"):
            select_device("cuda")
