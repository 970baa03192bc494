"""``--depth hf:<path>`` with a tiny randomly initialised Depth Anything saved offline."""

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from monitor.depth import get_estimator, known_estimators  # noqa: E402
from monitor.depth.hf import HFDepthEstimator, height_sign, state_dict_sha256  # noqa: E402
from monitor.errors import MonitorError, MonitorWarning  # noqa: E402
from monitor.results import Light  # noqa: E402


def _tiny_depth_anything(folder, image_size=56):
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config
    from transformers.models.dpt import DPTImageProcessorPil

    backbone = Dinov2Config(
        image_size=image_size, patch_size=14, hidden_size=16, num_hidden_layers=4,
        num_attention_heads=2, intermediate_size=32,
        out_indices=[1, 2, 3, 4], reshape_hidden_states=False,  # what Depth Anything needs
    )
    config = DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=16, neck_hidden_sizes=[8, 8, 16, 16],
        fusion_hidden_size=8, head_hidden_size=4, patch_size=14,
    )
    torch.manual_seed(0)
    DepthAnythingForDepthEstimation(config).eval().save_pretrained(folder)
    DPTImageProcessorPil(
        size={"height": image_size, "width": image_size}, keep_aspect_ratio=True,
        ensure_multiple_of=14, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(folder)
    return folder


def _tiny_glpn(folder, *, processor=True):
    """GLPN (BatchNorm in its decoder; metric depth) with 4 tiny stages."""
    from transformers import GLPNConfig, GLPNForDepthEstimation
    from transformers.models.glpn import GLPNImageProcessorPil

    config = GLPNConfig(
        num_encoder_blocks=4, depths=[1, 1, 1, 1], sr_ratios=[8, 4, 2, 1],
        hidden_sizes=[8, 8, 16, 16], patch_sizes=[7, 3, 3, 3], strides=[4, 2, 2, 2],
        num_attention_heads=[1, 1, 1, 1], mlp_ratios=[2, 2, 2, 2], decoder_hidden_size=8,
    )
    torch.manual_seed(1)
    GLPNForDepthEstimation(config).eval().save_pretrained(folder)
    if processor:
        GLPNImageProcessorPil(size_divisor=32).save_pretrained(folder)
    return folder


def _tiny_dpt(folder):
    """DPT with BatchNorm in the fusion residuals, saved WITHOUT a preprocessor config."""
    from transformers import DPTConfig, DPTForDepthEstimation

    config = DPTConfig(
        hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32,
        image_size=32, patch_size=8, neck_hidden_sizes=[8, 8, 16, 16], fusion_hidden_size=8,
        backbone_out_indices=[0, 1, 2, 3], use_batch_norm_in_fusion_residual=True,
    )
    torch.manual_seed(2)
    DPTForDepthEstimation(config).eval().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return _tiny_depth_anything(tmp_path_factory.mktemp("tiny-depth-anything"))


def _scan(h=90, w=130, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = 0.3 + 0.2 * np.sin(x / 9.0) * np.cos(y / 7.0)
    img = base[..., None] * np.array([1.0, 0.9, 0.7]) + 0.02 * rng.random((h, w, 3))
    return np.clip(img, 0, 1).astype(np.float32)


def test_tiny_model_loads_from_a_folder_and_runs_tiled(tiny_model):
    est = get_estimator(f"hf:{tiny_model}", "cpu")
    assert isinstance(est, HFDepthEstimator)
    assert (est.tile, est.multiple) == (56, 14)  # the processor's size, the patch multiple
    img = _scan()
    out = est.estimate(img, Light())
    assert out.height.shape == img.shape[:2] and out.height.dtype == np.float32
    assert np.isfinite(out.height).all() and out.height.std() > 0
    assert out.model_id == f"hf:{tiny_model}"
    assert len(out.weights_sha256) == 64
    # CPU inference is deterministic
    np.testing.assert_array_equal(out.height, est.estimate(img, Light()).height)


def test_single_tile_equals_the_plain_transformers_forward(tiny_model):
    from transformers import AutoModelForDepthEstimation

    est = HFDepthEstimator(str(tiny_model), torch.device("cpu"))
    img = _scan(56, 56)
    ours = est.estimate(img, Light()).height
    model = AutoModelForDepthEstimation.from_pretrained(tiny_model).eval()
    srgb = np.where(img <= 0.0031308, 12.92 * img, 1.055 * np.power(img, 1 / 2.4) - 0.055)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    pixels = torch.tensor(((srgb - mean) / std).transpose(2, 0, 1)[None], dtype=torch.float32)
    with torch.inference_mode():
        ref = model(pixel_values=pixels).predicted_depth[0].numpy()
    # relative Depth Anything returns disparity (larger = nearer): kept as height
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


def test_output_convention_disparity_kept_depth_negated():
    from transformers import DepthAnythingConfig, GLPNConfig

    assert height_sign(DepthAnythingConfig()) == 1.0
    assert height_sign(DepthAnythingConfig(depth_estimation_type="metric")) == -1.0
    assert height_sign(GLPNConfig()) == -1.0


def test_missing_weights_give_one_line_instructions(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    with pytest.raises(MonitorError) as err:
        get_estimator("hf:depth-anything/Depth-Anything-V2-Small-hf", "cpu")
    message = str(err.value)
    assert "\n" not in message
    assert "download" in message and "--depth hf:DIR" in message
    with pytest.raises(MonitorError, match="not found"):
        get_estimator(f"hf:{tmp_path / 'no-such-folder'}", "cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MonitorError, match="config.json"):
        get_estimator(f"hf:{tmp_path / 'empty'}", "cpu")


def test_registry_lists_the_new_names():
    names = known_estimators()
    assert "relief" in names and "shading" in names and "hf:<id-or-path>" in names


def _independent_sha256(tensors) -> str:
    """The documented hash (names, dtypes, shapes, bytes; name order), written again here."""
    import hashlib

    digest = hashlib.sha256()
    for name, t in sorted(tensors.items()):
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def test_weights_hash_is_that_of_the_saved_file_and_sees_one_changed_value(tiny_model, tmp_path):
    est = HFDepthEstimator(str(tiny_model), torch.device("cpu"))
    # transformers renames some keys on load, so the reference is a fresh load's state dict
    fresh = transformers.AutoModelForDepthEstimation.from_pretrained(tiny_model).state_dict()
    assert est.weights_sha256 == _independent_sha256(fresh)
    # one weight changed by one step in its last bit: another hash
    model = transformers.AutoModelForDepthEstimation.from_pretrained(tiny_model)
    with torch.no_grad():
        p = next(model.parameters())
        p.view(-1)[0] = torch.nextafter(p.view(-1)[0], torch.tensor(float("inf")))
    assert state_dict_sha256(model) != est.weights_sha256
    # same weights, other folder: same hash
    model2 = transformers.AutoModelForDepthEstimation.from_pretrained(tiny_model)
    model2.save_pretrained(tmp_path / "copy")
    assert state_dict_sha256(model2) == est.weights_sha256


@pytest.mark.parametrize("family", ["glpn", "dpt"])
def test_batchnorm_models_load_hash_and_run(family, tmp_path):
    folder = _tiny_glpn(tmp_path / "glpn") if family == "glpn" else _tiny_dpt(tmp_path / "dpt")
    if family == "dpt":
        with pytest.warns(MonitorWarning, match="no preprocessor_config.json.*DPTImageProcessor"):
            est = HFDepthEstimator(str(folder), torch.device("cpu"))
    else:
        est = HFDepthEstimator(str(folder), torch.device("cpu"))
    # 0-dim num_batches_tracked buffers are hashed (shape + bytes), like any tensor
    zero_dim = [k for k, v in est.model.state_dict().items() if v.dim() == 0]
    from safetensors.torch import load_file

    saved = load_file(str(folder / "model.safetensors"))
    assert zero_dim and est.weights_sha256 == _independent_sha256(saved)
    assert est.sign == (-1.0 if family == "glpn" else 1.0)  # GLPN: metric depth, negated
    img = _scan(96, 96)  # plain-ViT DPT reshapes its tokens to a square
    out = est.estimate(img, Light())
    assert out.height.shape == img.shape[:2] and np.isfinite(out.height).all()
    assert out.height.std() > 0


def test_missing_processor_config_takes_the_family_default(tmp_path):
    from transformers.models.glpn import GLPNImageProcessorPil

    folder = _tiny_glpn(tmp_path / "glpn", processor=False)
    with pytest.warns(MonitorWarning, match="GLPNImageProcessor"):
        est = HFDepthEstimator(str(folder), torch.device("cpu"))
    assert est.multiple == GLPNImageProcessorPil().size_divisor  # the family's geometry
