"""Features stay float32 under autocast; only network bodies run in reduced precision (#16).

On CUDA, :func:`monitor.depth.tiling.tiled_predict` runs predictions under
bfloat16 autocast. The relief estimator computes its input features (log
ratios, blurs, integration along the light) inside the prediction; they must
be computed outside autocast. On the CPU the same path is forced here by
making ``autocast_context`` return a CPU bfloat16 autocast.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from monitor.depth import relief, tiling
from monitor.results import Light


def _scan(h: int = 96, w: int = 128) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = ndimage.gaussian_filter(rng.random((h, w, 3)), (2, 2, 0))
    return (0.15 + 0.7 * (img - img.min()) / np.ptp(img)).astype(np.float32)


def test_relief_features_are_computed_outside_autocast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tiling, "autocast_context",
                        lambda device, enabled=True: torch.autocast("cpu", dtype=torch.bfloat16))
    seen: list[tuple[bool, torch.dtype]] = []
    real = relief.relief_features

    def spy(rgb: torch.Tensor, valid: torch.Tensor, light: Light) -> torch.Tensor:
        # what the features' own blurs (convolutions) would be computed in
        probe = torch.nn.functional.conv2d(rgb[None, :1], torch.ones(1, 1, 3, 3))
        seen.append((torch.is_autocast_enabled("cpu"), probe.dtype))
        return real(rgb, valid, light)

    monkeypatch.setattr(relief, "relief_features", spy)
    est = relief.ReliefEstimator(torch.device("cpu"))
    out = est.estimate(_scan(), Light(180.0, 30.0))
    assert seen and all(not on and dtype == torch.float32 for on, dtype in seen), seen
    assert out.height.dtype == np.float32 and np.isfinite(out.height).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_features_and_results_match_the_cpu() -> None:
    scan, light = _scan(256, 320), Light(180.0, 30.0)
    t = torch.from_numpy(scan.transpose(2, 0, 1).copy())
    valid = torch.ones(scan.shape[:2], dtype=torch.bool)
    cpu_f = relief.relief_features(t, valid, light)
    with tiling.autocast_context(torch.device("cuda")), tiling.full_precision("cuda"):
        gpu_f = relief.relief_features(t.cuda(), valid.cuda(), light).cpu()
    np.testing.assert_allclose(gpu_f.numpy(), cpu_f.numpy(), rtol=1e-3, atol=1e-4)
    cpu = relief.ReliefEstimator(torch.device("cpu")).estimate(scan, light).height
    gpu = relief.ReliefEstimator(torch.device("cuda")).estimate(scan, light).height
    # only the network body runs in bfloat16: within 1 % of the CPU's spread
    assert np.sqrt(np.mean((gpu - cpu) ** 2)) < 0.01 * cpu.std()
