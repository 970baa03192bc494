"""register(): features, robust homography (MAGSAC++), refinement and the residual grid."""

from __future__ import annotations

import math

import cv2
import numpy as np

from monitor.errors import MonitorError
from monitor.registration.features import (
    _BRUTE_FORCE_PAIRS,
    _SIFT_MAX_FEATURES,
    _candidates,
    _check_plausible,
    _work_grey,
)
from monitor.registration.inputs import _check_image
from monitor.registration.refine import _refine
from monitor.registration.residual import _Fitter, _scale_h, supported_grid
from monitor.results import Registration

_MAGSAC_THRESHOLD_WORK_PX = 3.0  # inlier threshold at working resolution


_MIN_INLIER_RATIO = 0.10  # consistent matches / ratio-test matches


_SEARCH_FIRST_PX = 12.0  # largest model error the first refinement pass corrects


_SEARCH_SECOND_PX = 3.0


_MAX_REFINE_POINTS = 1024


_TRIM_FLOOR_PX = 0.3


_LAMBDA_PROVISIONAL = 1e-2  # smoothness weight while matches are still being refined


def register(
    baseline: np.ndarray,
    current: np.ndarray,
    *,
    max_px: int = 2400,
    min_inliers: int = 25,
    residual_grid: int = 6,
    ratio: float = 0.75,
) -> Registration:
    """Register CURRENT onto BASELINE: robust homography plus smooth residual warp.

    Parameters
    ----------
    baseline, current
        Images as read from disk: uint8 or uint16, H x W x 3 (sRGB-encoded RGB) or H x W.
    max_px
        Long side of the working images used for feature matching.
    min_inliers
        Fewest consistent matches accepted as "the same artwork".
    residual_grid
        Nodes per side of the smooth residual displacement grid (>= 3); 0 disables it.
    ratio
        Lowe ratio-test threshold.

    Returns
    -------
    Registration
        ``homography`` maps CURRENT full-resolution pixel coordinates onto BASELINE ones;
        ``residual_grid`` (or None) as documented in :class:`monitor.results.Registration`.
        ``n_matches`` counts ratio-test matches, ``n_inliers`` the consistent ones.
        ``rmse_homography_px`` (best homography alone) and ``rmse_px`` (final model) are
        RMSEs over the refined full-resolution matches, in CURRENT pixels;
        ``working_scale`` is working / full-resolution pixels of the baseline.

    Raises
    ------
    MonitorError
        Bad input, too little texture, too few or too inconsistent matches, or an
        implausible (flipped, extreme scale, strongly perspective or non-planar) mapping.

    Examples
    --------
    A textured image and a copy moved 7 px right and 4 px down: the homography
    maps CURRENT back by that shift.

    >>> import cv2
    >>> rng = np.random.default_rng(0)
    >>> texture = cv2.GaussianBlur(rng.uniform(0, 255, (320, 320)), (0, 0), 2.0)
    >>> base = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    >>> reg = register(base, np.roll(base, (4, 7), axis=(0, 1)), residual_grid=0)
    >>> [round(float(v), 1) for v in reg.homography[:2, 2]], reg.n_inliers >= 25
    ([-7.0, -4.0], True)
    """
    baseline = _check_image(baseline, "baseline")
    current = _check_image(current, "current")
    if int(max_px) < 256:
        raise MonitorError(f"max_px must be >= 256, got {max_px}")
    if int(min_inliers) < 8:
        raise MonitorError(f"min_inliers must be >= 8, got {min_inliers}")
    if residual_grid != 0 and not 3 <= int(residual_grid) <= 64:
        raise MonitorError(f"residual_grid must be 0 (off) or 3..64, got {residual_grid}")
    if not 0.0 < ratio < 1.0:
        raise MonitorError(f"ratio must be in (0, 1), got {ratio}")
    b_shape = (int(baseline.shape[0]), int(baseline.shape[1]))
    c_shape = (int(current.shape[0]), int(current.shape[1]))

    # 1-2. features at working resolution
    gb, sbx, sby = _work_grey(baseline, int(max_px))
    gc, scx, scy = _work_grey(current, int(max_px))
    sift = cv2.SIFT.create(nfeatures=_SIFT_MAX_FEATURES)
    kb, db = sift.detectAndCompute(gb, None)
    kc, dc = sift.detectAndCompute(gc, None)
    for name, kps in (("baseline", kb), ("current", kc)):
        if len(kps) < min_inliers:
            raise MonitorError(
                f"the {name} image has too little texture to register: {len(kps)} features "
                f"(need >= {min_inliers})"
            )
    if len(kb) * len(kc) < _BRUTE_FORCE_PAIRS:
        matcher: cv2.DescriptorMatcher = cv2.BFMatcher(cv2.NORM_L2)
    else:
        # FLANN's randomised kd-trees draw from OpenCV's per-thread RNG: seed it so that
        # the same pair of scans always gives the same registration
        cv2.setRNGSeed(0)
        matcher = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 4}, {"checks": 64})
    knn = matcher.knnMatch(dc, db, k=2)
    good = [m[0] for m in knn if len(m) == 2 and m[0].distance < ratio * m[1].distance]
    n_matches = len(good)
    refuse = "the two images do not appear to show the same artwork"
    if n_matches < min_inliers:
        raise MonitorError(
            f"{refuse}: {n_matches} matches pass the ratio test (need >= {min_inliers})"
        )
    work_c = np.array([kc[m.queryIdx].pt for m in good], dtype=np.float64) + 0.5
    work_b = np.array([kb[m.trainIdx].pt for m in good], dtype=np.float64) + 0.5
    resp = np.array([kb[m.trainIdx].response for m in good], dtype=np.float64)
    pts_c = work_c / (scx, scy)
    pts_b = work_b / (sbx, sby)

    # robust homography at working resolution, lifted: H = S_b^-1 H_work S_c
    h_work, mask = cv2.findHomography(
        work_c, work_b, cv2.USAC_MAGSAC, _MAGSAC_THRESHOLD_WORK_PX, maxIters=10000, confidence=0.999
    )
    if h_work is None or mask is None or not np.all(np.isfinite(h_work)):
        raise MonitorError(f"{refuse}: no consistent homography among {n_matches} matches")
    h = np.linalg.inv(_scale_h(sbx, sby)) @ h_work @ _scale_h(scx, scy)
    h /= h[2, 2]
    inl = mask.ravel().astype(bool)

    # 3. grow the inlier set with a provisional smooth residual
    requested = int(residual_grid)
    fitter = _Fitter(b_shape, supported_grid(requested, int(inl.sum())) or requested)
    tol = _MAGSAC_THRESHOLD_WORK_PX / min(scx, scy)
    model: tuple[np.ndarray, np.ndarray | None] = (h, None)
    if residual_grid and inl.sum() >= 4 * fitter.n**2:
        for _ in range(2):
            fitted = fitter.fit(pts_b[inl], pts_c[inl], _LAMBDA_PROVISIONAL)
            if fitted is None:
                break
            grown = fitter.errors(fitted, pts_b, pts_c) < tol
            if grown.sum() < inl.sum():
                break
            model, inl = fitted, grown
    n_inl = int(inl.sum())
    if n_inl < min_inliers:
        raise MonitorError(
            f"{refuse}: {n_inl} consistent matches of {n_matches} (need >= {min_inliers})"
        )
    if n_inl < _MIN_INLIER_RATIO * n_matches:
        raise MonitorError(
            f"{refuse}: only {100.0 * n_inl / n_matches:.0f}% of {n_matches} matches are "
            f"consistent (need >= {100 * _MIN_INLIER_RATIO:.0f}%)"
        )
    _check_plausible(model[0], c_shape)

    # 4. full-resolution refinement on a spread subset of inliers
    idx = np.flatnonzero(inl)
    cells = int(math.sqrt(_MAX_REFINE_POINTS))
    centres = _candidates(pts_b[idx], resp[idx], b_shape, cells)
    fb, fc = pts_b[inl], pts_c[inl]
    for search in (_SEARCH_FIRST_PX, _SEARCH_SECOND_PX):
        rb, rc = _refine(baseline, current, centres, model, search)
        if len(rb) < max(min_inliers, 12):
            break  # keep the working-resolution matches
        fb, fc = rb, rc
        refit = fitter.robust_fit(
            fb, fc, _LAMBDA_PROVISIONAL if residual_grid else None, _TRIM_FLOOR_PX
        )
        if refit is None:
            break
        model = refit[0]

    # 5. final fit: cross-validated smoothness, residual only when it helps
    # (chosen on the matches a provisional robust fit keeps, so that outliers do not
    # decide the smoothness)
    prelim = fitter.robust_fit(
        fb, fc, _LAMBDA_PROVISIONAL if residual_grid else None, _TRIM_FLOOR_PX
    )
    if prelim is None:
        raise MonitorError(f"{refuse}: the refined matches do not fit a homography")
    notes: list[str] = []
    n_grid = supported_grid(requested, int(prelim[1].sum()))
    if requested and n_grid != fitter.n:
        # fewer refined matches than the grid needs: the largest grid they support
        if n_grid:
            notes.append(f"residual_grid reduced from {requested} to {n_grid}: "
                         f"{int(prelim[1].sum())} refined matches support no more")
        fitter = _Fitter(b_shape, n_grid or fitter.n)
        prelim = fitter.robust_fit(fb, fc, _LAMBDA_PROVISIONAL if n_grid else None,
                                   _TRIM_FLOOR_PX) or prelim
    lam, _cv = fitter.choose_lambda(fb[prelim[1]], fc[prelim[1]])
    if requested and fitter.note:
        notes.append(fitter.note)
    final = fitter.robust_fit(fb, fc, lam, _TRIM_FLOOR_PX)
    if final is None:
        raise MonitorError(f"{refuse}: the refined matches do not fit a homography")
    model, keep = final
    h, grid = model
    _check_plausible(h, c_shape)
    kb_, kc_ = fb[keep], fc[keep]
    rmse = float(np.sqrt(np.mean(fitter.errors((h, grid), kb_, kc_) ** 2)))
    # the best homography alone on the same matches (the joint fit's H shares work
    # with the grid)
    h_alone = h if grid is None else (fitter.fit_h(kb_, kc_) if len(kb_) >= 4 else None)
    h_alone = h if h_alone is None else h_alone
    rmse_h = float(np.sqrt(np.mean(fitter.errors((h_alone, None), kb_, kc_) ** 2)))
    if grid is not None:
        limit = max(8.0, 0.02 * max(b_shape))
        if float(np.abs(grid).max()) > limit:
            raise MonitorError(
                "implausible registration: the scene is strongly non-planar "
                f"(residual warp {float(np.abs(grid).max()):.1f} px > {limit:.1f} px)"
            )
    return Registration(
        homography=h,
        baseline_shape=b_shape,
        current_shape=c_shape,
        n_matches=n_matches,
        n_inliers=n_inl,
        rmse_homography_px=rmse_h,
        rmse_px=rmse,
        residual_grid=None if grid is None else grid.astype(np.float64),
        working_scale=float(min(sbx, sby)),
        requested_grid=requested,
        notes=tuple(notes),
    )
