"""The :class:`DepthEstimator` interface, device selection and the registry of names.

An estimator turns one linear-light RGB scan into a *relative* height map
(larger = towards the viewer, arbitrary scale and offset). Names accepted by
``--depth``:

``shading``
    Physically based relief from shading (no weights), :mod:`monitor.depth.shading`.
``relief``
    The shipped per-scan relief network, :mod:`monitor.depth.relief`.
``hf:<id-or-path>``
    Any ``transformers`` depth model (Depth Anything, DPT, ZoeDepth, GLPN), from
    a local folder or a hub id, :mod:`monitor.depth.hf`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from monitor.errors import MonitorError
from monitor.results import DepthMap, Light


@runtime_checkable
class DepthEstimator(Protocol):
    """Anything that maps a linear RGB scan to a relative height map."""

    name: str
    model_id: str
    weights_sha256: str | None
    device: torch.device

    def estimate(self, rgb_linear: np.ndarray, light: Light) -> DepthMap:
        """Estimate relative height.

        Parameters
        ----------
        rgb_linear
            H x W x 3 float32 linear light in [0, 1].
        light
            Where the light came from (estimators that do not need it ignore it).

        Returns
        -------
        DepthMap
            ``height`` is H x W float32, larger = towards the viewer.
        """
        ...


def select_device(name: str = "auto") -> torch.device:
    """Pick a torch device: ``auto`` (CUDA, then MPS, then CPU), ``cuda``, ``mps`` or ``cpu``.

    Parameters
    ----------
    name
        ``auto``, ``cpu``, ``cuda`` (or ``cuda:N``) or ``mps``; case and spaces ignored.

    Returns
    -------
    torch.device

    Raises
    ------
    MonitorError
        If the named device is not available on this machine.

    Examples
    --------
    >>> select_device("CPU")
    device(type='cpu')
    """
    name = name.lower().strip()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise MonitorError("device 'cuda' requested but no CUDA GPU is available")
        return torch.device(name)
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise MonitorError("device 'mps' requested but Apple MPS is not available")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise MonitorError(f"unknown device {name!r}; use auto, cpu, cuda or mps")


def _shading(device: torch.device) -> DepthEstimator:
    from monitor.depth.shading import ShadingEstimator

    return ShadingEstimator(device=device)


def _relief(device: torch.device) -> DepthEstimator:
    from monitor.depth.relief import ReliefEstimator

    return ReliefEstimator(device=device)


_REGISTRY: dict[str, Callable[[torch.device], DepthEstimator]] = {
    "shading": _shading,
    "relief": _relief,
}
#: Prefix of parameterised names: ``hf:<id-or-path>``.
HF_PREFIX = "hf:"


def known_estimators() -> list[str]:
    """Names accepted by :func:`get_estimator` (``hf:<id-or-path>`` stands for a family).

    Returns
    -------
    list of str
        Registered names, sorted, then ``hf:<id-or-path>``.

    Examples
    --------
    >>> "shading" in known_estimators(), known_estimators()[-1]
    (True, 'hf:<id-or-path>')
    """
    return [*sorted(_REGISTRY), f"{HF_PREFIX}<id-or-path>"]


def get_estimator(name: str, device: str = "auto") -> DepthEstimator:
    """Build the estimator called ``name`` on ``device``.

    Parameters
    ----------
    name
        One of :func:`known_estimators` (``hf:<id-or-path>`` loads that model).
    device
        As for :func:`select_device`.

    Returns
    -------
    DepthEstimator

    Raises
    ------
    MonitorError
        For an unknown name or an unavailable device.

    Examples
    --------
    >>> get_estimator("shading", "cpu").name
    'shading'
    """
    if name.startswith(HF_PREFIX):
        from monitor.depth.hf import HFDepthEstimator

        device_ = select_device(device)
        return HFDepthEstimator(name[len(HF_PREFIX) :].strip(), device_)
    factory = _REGISTRY.get(name)
    if factory is None:
        raise MonitorError(
            f"unknown depth estimator {name!r}; choose one of: {', '.join(known_estimators())}"
        )
    return factory(select_device(device))
