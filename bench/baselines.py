"""Baselines the benchmark measures `monitor` against (they live here, not in the library).

``naive``
    Registered luminance difference, thresholded: the CURRENT scan is resampled
    onto the BASELINE analysis grid with `monitor`'s own registration (so only
    the change step differs), both are reduced to linear luminance, the current
    one is scaled by the median luminance ratio (one global exposure gain), and
    the difference is cut into regions by the library's own significance rule
    (``monitor.regions.find_regions``). A brighter patch is called a "bulge",
    a darker one a "recession": a luminance difference cannot tell the two apart
    (under raking light a bump is a bright/dark pair), and the benchmark reports
    that as it is.
``sift``
    Plain registration: SIFT on the full-resolution grey images, Lowe's ratio
    test, one RANSAC homography (OpenCV), no refinement and no residual warp.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import cv2
import numpy as np

from monitor.change.methods import robust_sigma
from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.io import analysis_scale, downsample, to_linear
from monitor.regions import find_regions
from monitor.registration import warp_to_baseline
from monitor.results import ChangeMap, Region, Registration

_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)  # Rec. 709, linear light
_MIN_LUMA = 0.004  # below this, pixels are too dark for a meaningful gain estimate


@dataclass(frozen=True)
class NaiveResult:
    """The naive baseline's change map, regions and wall time (seconds)."""

    change: ChangeMap
    regions: tuple[Region, ...]
    seconds: float


@dataclass(frozen=True)
class SiftResult:
    """Plain SIFT homography (CURRENT -> BASELINE, corner-origin) and its statistics."""

    homography: np.ndarray
    n_matches: int
    n_inliers: int
    seconds: float

    def as_registration(
        self, baseline_shape: tuple[int, int], current_shape: tuple[int, int]
    ) -> Registration:
        """Wrap the homography as a :class:`Registration` (no residual grid).

        Parameters
        ----------
        baseline_shape, current_shape
            (rows, cols) of the two full-resolution scans.

        Returns
        -------
        Registration
        """
        return Registration(
            homography=self.homography,
            baseline_shape=baseline_shape,
            current_shape=current_shape,
            n_matches=self.n_matches,
            n_inliers=self.n_inliers,
            rmse_homography_px=math.nan,
            rmse_px=math.nan,
            residual_grid=None,
            working_scale=1.0,
        )


def _check_pixels(pixels: object, name: str) -> np.ndarray:
    if not isinstance(pixels, np.ndarray):
        raise MonitorError(f"{name} must be a numpy array, got {type(pixels).__name__}")
    if pixels.dtype not in (np.uint8, np.uint16):
        raise MonitorError(f"{name} must be uint8 or uint16, got {pixels.dtype}")
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise MonitorError(f"{name} must be H x W x 3, got shape {pixels.shape}")
    if min(pixels.shape[:2]) < 16:
        raise MonitorError(f"{name} is too small: {pixels.shape[1]}x{pixels.shape[0]} px")
    return pixels


def resample_pair(
    baseline: np.ndarray, current: np.ndarray, reg: Registration, analysis_max_px: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Both scans in linear light on the BASELINE analysis grid (as the pipeline does).

    Parameters
    ----------
    baseline, current
        Encoded H x W x 3 uint8/uint16 full-resolution scans.
    reg
        CURRENT -> BASELINE registration.
    analysis_max_px
        Long side of the analysis grid.

    Returns
    -------
    tuple
        ``(baseline_linear, current_warped_linear, valid, scale)``: float32 H' x W' x 3
        images, the H' x W' bool overlap and the analysis pixels per baseline pixel.
    """
    baseline = _check_pixels(baseline, "baseline")
    current = _check_pixels(current, "current")
    s = analysis_scale(baseline.shape[:2], analysis_max_px)
    base_lin = to_linear(downsample(baseline, s))
    h_scale = float(np.sqrt(abs(np.linalg.det(np.asarray(reg.homography)[:2, :2]))))
    cur_small = downsample(current, min(1.0, s * h_scale))
    s_cur = cur_small.shape[1] / reg.current_shape[1]
    warped, valid = warp_to_baseline(
        to_linear(cur_small), reg, image_scale=s_cur, out_shape=base_lin.shape[:2], out_scale=s
    )
    return base_lin, warped, valid, s


def naive_change(
    baseline: np.ndarray, current: np.ndarray, valid: np.ndarray, *, scale: float = 1.0
) -> ChangeMap:
    """Exposure-normalised luminance difference of two registered linear scans.

    Parameters
    ----------
    baseline, current
        H x W x 3 float32 linear light, current already warped onto the baseline grid.
    valid
        H x W bool overlap.
    scale
        Analysis pixels per baseline pixel (recorded in the result).

    Returns
    -------
    ChangeMap
        ``height`` = gain * Y(current) - Y(baseline) (linear luminance, + = brighter),
        NaN outside the overlap; ``noise_sigma`` is its robust spread (MAD).
    """
    if baseline.ndim != 3 or baseline.shape[2] != 3 or current.shape != baseline.shape:
        raise MonitorError(
            f"naive: need two H x W x 3 images of one shape, got {baseline.shape}, {current.shape}"
        )
    if valid.shape != baseline.shape[:2] or not valid.any():
        raise MonitorError("naive: the overlap mask is empty or of the wrong shape")
    yb = baseline.astype(np.float32) @ _LUMA
    yc = current.astype(np.float32) @ _LUMA
    ok = valid & (yb > _MIN_LUMA) & (yc > _MIN_LUMA)
    if ok.sum() < 16:
        raise MonitorError("naive: fewer than 16 usable overlapping pixels")
    gain = float(np.median(yb[ok] / yc[ok]))
    diff = (gain * yc - yb).astype(np.float32)
    sigma = robust_sigma(diff[ok])
    diff[~valid] = np.nan
    return ChangeMap(height=diff, scale=scale, method="naive", noise_sigma=sigma)


def naive_compare(
    baseline: np.ndarray,
    current: np.ndarray,
    reg: Registration,
    settings: Settings | None = None,
) -> NaiveResult:
    """Run the naive baseline end to end on two encoded scans.

    Parameters
    ----------
    baseline, current
        Encoded full-resolution scans (as :func:`monitor.io.read_image` returns them).
    reg
        CURRENT -> BASELINE registration (the benchmark passes `monitor`'s).
    settings
        ``analysis_max_px``, ``significance_z`` and ``min_region_frac`` are used.

    Returns
    -------
    NaiveResult
    """
    settings = settings or Settings()
    start = time.perf_counter()
    base_lin, warped, valid, s = resample_pair(baseline, current, reg, settings.analysis_max_px)
    change = naive_change(base_lin, warped, valid, scale=s)
    regions = find_regions(
        change, z=settings.significance_z, min_diameter_frac=settings.min_region_frac
    )
    return NaiveResult(change=change, regions=regions, seconds=time.perf_counter() - start)


def _grey8(pixels: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)
    if grey.dtype == np.uint16:
        grey = (grey.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    return grey


def sift_homography(
    baseline: np.ndarray,
    current: np.ndarray,
    *,
    ratio: float = 0.75,
    ransac_px: float = 3.0,
) -> SiftResult:
    """Plain full-resolution SIFT + ratio test + RANSAC homography.

    Parameters
    ----------
    baseline, current
        Encoded H x W x 3 uint8/uint16 full-resolution scans.
    ratio
        Lowe's ratio-test threshold.
    ransac_px
        RANSAC reprojection threshold in BASELINE pixels.

    Returns
    -------
    SiftResult
        Homography mapping CURRENT onto BASELINE, corner-origin coordinates.

    Raises
    ------
    MonitorError
        When fewer than 4 matches survive or no homography is found.
    """
    baseline = _check_pixels(baseline, "baseline")
    current = _check_pixels(current, "current")
    start = time.perf_counter()
    sift = cv2.SIFT_create()
    kb, db = sift.detectAndCompute(_grey8(baseline), None)
    kc, dc = sift.detectAndCompute(_grey8(current), None)
    if db is None or dc is None or len(kb) < 4 or len(kc) < 4:
        raise MonitorError("sift: fewer than 4 keypoints in one of the scans")
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    good = [
        pair[0]
        for pair in matcher.knnMatch(dc, db, k=2)
        if len(pair) == 2 and pair[0].distance < ratio * pair[1].distance
    ]
    if len(good) < 4:
        raise MonitorError(f"sift: only {len(good)} matches pass the ratio test")
    # OpenCV keypoints are pixel-centre origin; +0.5 gives corner-origin coordinates
    pc = np.float64([kc[m.queryIdx].pt for m in good]) + 0.5
    pb = np.float64([kb[m.trainIdx].pt for m in good]) + 0.5
    hom, inliers = cv2.findHomography(pc, pb, cv2.RANSAC, ransac_px)
    if hom is None or not np.all(np.isfinite(hom)):
        raise MonitorError("sift: no homography found")
    return SiftResult(
        homography=hom / hom[2, 2],
        n_matches=len(good),
        n_inliers=int(inliers.sum()) if inliers is not None else 0,
        seconds=time.perf_counter() - start,
    )
