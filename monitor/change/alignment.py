"""Robust scale-and-shift fit of one relative map onto another.

Relative depth maps (from networks or from shading) have an unknown scale and
offset per scan. Before differencing, the current map is mapped onto the
baseline's by ``reference ~= scale * moving + shift``, fitted by iteratively
reweighted least squares with Tukey's biweight so that the changed pixels
(the thing we are looking for) do not pull the fit.
"""

from __future__ import annotations

import numpy as np

from monitor.errors import MonitorError
from monitor.results import Alignment

_TUKEY_C = 4.685


def fit_scale_shift(
    reference: np.ndarray,
    moving: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    iterations: int = 20,
    max_samples: int = 400_000,
    seed: int = 0,
) -> Alignment:
    """Fit ``reference ~= scale * moving + shift`` robustly.

    Parameters
    ----------
    reference, moving
        Maps of the same shape (any dimensionality), float.
    mask
        Pixels allowed in the fit (e.g. the overlap); NaNs are excluded too.
    iterations
        IRLS iterations (Tukey biweight on MAD-scaled residuals).
    max_samples
        Pixels drawn (deterministically) for the fit, bounding time and memory.
    seed
        Seed of that draw.

    Returns
    -------
    Alignment
        Scale, shift, number of pixels used and the fraction with non-zero final weight.

    Raises
    ------
    MonitorError
        If shapes differ or fewer than 16 usable pixels remain.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> moving = rng.normal(size=(32, 32))
    >>> reference = 2.0 * moving + 0.5
    >>> reference[0, :4] = 100.0  # outliers get no weight
    >>> a = fit_scale_shift(reference, moving)
    >>> round(a.scale, 3), round(a.shift, 3)
    (2.0, 0.5)
    """
    if reference.shape != moving.shape:
        raise MonitorError(f"alignment: shapes differ {reference.shape} vs {moving.shape}")
    ok = np.isfinite(reference) & np.isfinite(moving)
    if mask is not None:
        if mask.shape != reference.shape:
            raise MonitorError("alignment: mask shape differs from the maps")
        ok &= mask.astype(bool)
    idx = np.flatnonzero(ok)
    if idx.size < 16:
        raise MonitorError("alignment: fewer than 16 overlapping pixels to fit scale and shift")
    if idx.size > max_samples:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_samples, replace=False))
    y = reference.reshape(-1)[idx].astype(np.float64)
    x = moving.reshape(-1)[idx].astype(np.float64)
    design = np.stack([x, np.ones_like(x)], axis=1)
    weights = np.ones_like(x)
    coef = np.array([1.0, 0.0])
    for _ in range(iterations):
        sw = np.sqrt(weights)
        coef_new, *_ = np.linalg.lstsq(design * sw[:, None], y * sw, rcond=None)
        resid = y - design @ coef_new
        scale = 1.4826 * np.median(np.abs(resid - np.median(resid)))
        if scale <= 1e-12:
            coef = coef_new
            break
        u = resid / (_TUKEY_C * scale)
        weights = np.where(np.abs(u) < 1, (1 - u * u) ** 2, 0.0)
        converged = np.allclose(coef_new, coef, rtol=1e-6, atol=1e-9)
        coef = coef_new
        if converged:
            break
    return Alignment(
        scale=float(coef[0]),
        shift=float(coef[1]),
        n_used=int(idx.size),
        inlier_fraction=float(np.mean(weights > 0)),
    )


def apply_alignment(moving: np.ndarray, alignment: Alignment) -> np.ndarray:
    """Return ``alignment.scale * moving + alignment.shift`` as float32.

    Parameters
    ----------
    moving
        Map to bring onto the reference's scale.
    alignment
        From :func:`fit_scale_shift`.

    Returns
    -------
    np.ndarray
        float32, same shape as ``moving``.

    Examples
    --------
    >>> from monitor.results import Alignment
    >>> apply_alignment(np.array([0.0, 1.0]), Alignment(2.0, 0.5, 2, 1.0))
    array([0.5, 2.5], dtype=float32)
    """
    return (alignment.scale * moving + alignment.shift).astype(np.float32)
