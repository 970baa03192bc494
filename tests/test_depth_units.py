"""The depth route: units as labelled, and a polarity-flipping alignment refused (#16)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage
from test_store import make_comparison

from monitor.change.methods import depth_change
from monitor.errors import MonitorError
from monitor.pipeline import summary
from monitor.results import DepthMap, Light, height_units


class _Flipping:
    """A per-scan estimator that answers upside down every second call."""

    name = "flipping"

    def __init__(self) -> None:
        self.calls = 0

    def estimate(self, rgb_linear: np.ndarray, light: Light) -> DepthMap:
        self.calls += 1
        h = ndimage.gaussian_filter(rgb_linear.mean(axis=2), 2.0).astype(np.float32)
        sign = 1.0 if self.calls % 2 else -1.0
        return DepthMap(height=sign * h, model_id="test/flipping", weights_sha256=None,
                        device="cpu")


def _pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    img = ndimage.gaussian_filter(rng.random((64, 80, 3)), (3, 3, 0)).astype(np.float32)
    img = (0.2 + 0.6 * (img - img.min()) / np.ptp(img)).astype(np.float32)
    return img, img.copy(), np.ones((64, 80), bool)


def test_a_negative_alignment_scale_is_refused_not_used() -> None:
    b, c, valid = _pair()
    with pytest.raises(MonitorError, match="scale -1 .*must be > 0"):
        depth_change(b, c, valid, Light(), estimator=_Flipping())


def test_units_follow_the_estimator() -> None:
    assert height_units("photometric", "monitor/photometric-v1") == "px"
    assert height_units("pair", "monitor/pair-v3") == "px"
    assert height_units("depth", "monitor/shading-v1") == "px"
    assert height_units("depth", "monitor/relief-v2") == "px"
    assert height_units("depth", "hf:/models/glpn") == "rel."
    base = make_comparison()
    for model_id, expected in (("monitor/shading-v1", "baseline pixel pitch"),
                               ("hf:/models/dpt", "relative")):
        change = dataclasses.replace(base.change, method="depth", model_id=model_id)
        units = summary(dataclasses.replace(base, change=change))["units"]
        assert str(units).startswith(expected)
