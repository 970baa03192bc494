"""Network definitions and weight files."""

import json

import pytest
import torch

from monitor.errors import MonitorError
from monitor.nets import NetSpec, UNet, count_parameters, load_net, pad_to_multiple, save_net


def _net(norm="none", seed=0):
    torch.manual_seed(seed)
    net = UNet(NetSpec(5, 1, (8, 16, 32), norm, 2))
    torch.nn.init.normal_(net.head.weight, std=0.1)  # the head starts at zero; wake it up
    return net.eval()


def test_shapes_multiple_and_initial_output_near_the_residual_channel():
    spec = NetSpec(9, residual=2)
    assert spec.multiple == 2 * 2**4
    torch.manual_seed(0)
    net = UNet(spec)
    x = torch.randn(2, 9, 64, 96)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 1, 64, 96)
    # small initial head: training starts close to the physics channel it corrects
    assert (y - x[:, 2:3]).abs().max() < 0.1 * x[:, 2].abs().max()
    assert (y - x[:, 2:3]).abs().max() > 0  # but not frozen at it
    with pytest.raises(MonitorError, match="residual"):
        UNet(NetSpec(9, residual=9))
    with pytest.raises(MonitorError, match="multiples of 32"):
        net(torch.randn(1, 9, 48, 64))
    with pytest.raises(MonitorError, match="expects"):
        net(torch.randn(1, 4, 64, 64))


def test_shipped_architecture_is_compact():
    n = count_parameters(UNet(NetSpec(9)))
    assert 200_000 <= n <= 500_000


def test_output_is_local_without_normalisation_and_not_with_groupnorm():
    """A pixel's output must not depend on far-away content (tiling relies on it)."""
    x = torch.randn(1, 5, 256, 256)
    far = x.clone()
    far[..., 200:, 200:] += 5.0  # change one corner only
    with torch.no_grad():
        plain = _net("none")
        d_plain = (plain(x) - plain(far))[..., :40, :40].abs().max()
        grouped = _net("group")
        d_group = (grouped(x) - grouped(far))[..., :40, :40].abs().max()
    assert d_plain == 0
    assert d_group > 1e-4  # per-sample statistics leak across the whole tile


def test_save_and_load_round_trip(tmp_path):
    net = _net()
    path = tmp_path / "w" / "pair.safetensors"
    sha = save_net(net, path, "pair", {"version": "v9", "work_px": "256"})
    loaded = load_net(path, kind="pair")
    assert loaded.sha256 == sha and len(sha) == 64
    assert loaded.spec == net.spec
    assert loaded.model_id == "monitor/pair-v9"
    assert loaded.meta_float("work_px", 0) == 256.0
    assert json.loads(loaded.metadata["arch"])["widths"] == [8, 16, 32]
    x = torch.randn(1, 5, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), net(x))
    assert not any(p.requires_grad for p in loaded.model.parameters())


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(MonitorError, match="monitor train relief"):
        load_net(tmp_path / "missing.safetensors", kind="relief")
    path = tmp_path / "pair.safetensors"
    save_net(_net(), path, "pair")
    with pytest.raises(MonitorError, match="expected 'relief'"):
        load_net(path, kind="relief")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(MonitorError, match="cannot read"):
        load_net(bad)


def test_pad_to_multiple():
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).view(2, 3, 5, 7)
    padded, size = pad_to_multiple(x, 4)
    assert padded.shape == (2, 3, 8, 8) and size == (5, 7)
    torch.testing.assert_close(padded[..., :5, :7], x)
