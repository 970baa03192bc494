"""Per-scan relative height estimators (image -> height, larger = towards the viewer)."""

from monitor.depth.base import DepthEstimator, get_estimator, known_estimators, select_device

__all__ = ["DepthEstimator", "get_estimator", "known_estimators", "select_device"]
