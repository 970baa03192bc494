"""Reporting a registration: its convention, JSON form and the corner error against a truth."""

from __future__ import annotations

import numpy as np

from monitor.errors import MonitorError
from monitor.geometry import apply_homography
from monitor.registration.inputs import _check_registration
from monitor.results import Registration

CONVENTION = (
    "pixel coordinates, origin at the top-left corner of the top-left pixel (centre of "
    "pixel [row, col] at (col + 0.5, row + 0.5)), x right, y down, full resolution; "
    "homography maps CURRENT onto BASELINE; a BASELINE point p is found in CURRENT at "
    "H^-1(p) + d(p), d = residual_grid (dx, dy in CURRENT px) on ny x nx nodes at "
    "x = j * W / (nx - 1), y = i * H / (ny - 1) of the BASELINE, cubic-convolution "
    "(Keys, a = -0.5) interpolation"
)


def corner_error(h_est: np.ndarray, h_true: np.ndarray, shape: tuple[int, int]) -> float:
    """Largest distance between the BASELINE corners mapped by two inverse homographies.

    Parameters
    ----------
    h_est, h_true
        3 x 3 homographies mapping CURRENT onto BASELINE.
    shape
        (rows, cols) of the BASELINE image; its corners are (0, 0), (W, 0), (W, H), (0, H).

    Returns
    -------
    float
        Max distance in CURRENT pixels between ``h_est^-1(corner)`` and ``h_true^-1(corner)``.

    Examples
    --------
    >>> shift = np.array([[1.0, 0.0, 3.0], [0.0, 1.0, 4.0], [0.0, 0.0, 1.0]])
    >>> corner_error(shift, np.eye(3), (100, 200))
    5.0
    """
    a = np.asarray(h_est, dtype=np.float64)
    b = np.asarray(h_true, dtype=np.float64)
    if a.shape != (3, 3) or b.shape != (3, 3):
        raise MonitorError("corner_error needs two 3 x 3 homographies")
    hb, wb = shape
    corners = np.array([[0, 0], [wb, 0], [wb, hb], [0, hb]], dtype=np.float64)
    try:
        pa = apply_homography(np.linalg.inv(a), corners)
        pb = apply_homography(np.linalg.inv(b), corners)
    except np.linalg.LinAlgError as exc:
        raise MonitorError("corner_error: singular homography") from exc
    return float(np.max(np.hypot(*(pa - pb).T)))


def registration_to_dict(reg: Registration) -> dict[str, object]:
    """JSON-ready summary of a registration.

    Parameters
    ----------
    reg
        The registration.

    Returns
    -------
    dict
        homography (nested list), shapes, match counts, RMSE figures, residual grid
        (nested list or None), working scale and a ``convention`` string.

    Examples
    --------
    >>> from monitor.results import Registration
    >>> reg = Registration(np.eye(3), (100, 200), (100, 200), 80, 70, 0.4, 0.3)
    >>> d = registration_to_dict(reg)
    >>> d["homography"][0], d["n_inliers"], d["residual_grid"]
    ([1.0, 0.0, 0.0], 70, None)
    """
    reg = _check_registration(reg)
    grid = reg.residual_grid
    return {
        "homography": [[float(v) for v in row] for row in np.asarray(reg.homography)],
        "baseline_shape": [int(v) for v in reg.baseline_shape],
        "current_shape": [int(v) for v in reg.current_shape],
        "n_matches": int(reg.n_matches),
        "n_inliers": int(reg.n_inliers),
        "rmse_homography_px": float(reg.rmse_homography_px),
        "rmse_px": float(reg.rmse_px),
        "residual_grid": None if grid is None else np.asarray(grid, np.float64).tolist(),
        "working_scale": float(reg.working_scale),
        "requested_residual_grid": int(reg.requested_grid),
        "notes": list(reg.notes),
        "convention": CONVENTION,
    }
