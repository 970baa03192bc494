"""Registration of a CURRENT scan onto a BASELINE scan.

Pipeline (all coordinates corner-origin, see :mod:`monitor.results`):

1. 8-bit grey working images (long side <= ``max_px``, ``cv2.INTER_AREA``),
   percentile stretch + CLAHE so that exposure and white balance do not matter.
2. SIFT features, Lowe ratio test, robust homography (``cv2.USAC_MAGSAC``).
3. Inliers are grown with a provisional smooth residual so that matches near
   the corners, where lens distortion differs, are kept.
4. Full-resolution refinement: around a well spread subset of the inliers (and
   the centres of grid cells SIFT left empty) the CURRENT image is resampled
   into the BASELINE frame with the current model and the remaining shift is
   measured by phase correlation, then Lucas-Kanade with local gain/offset.
5. Final least-squares fit of the homography plus a smooth displacement grid
   (second-difference penalty), with robust trimming; the smoothness weight is
   chosen by cross-validation and the grid is kept only when it lowers the
   held-out error.

OpenCV keypoints and ``cv2.remap`` maps use the pixel-centre origin
(``p_cv = p_corner - 0.5``); every conversion happens at the boundary of the
OpenCV call.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from monitor.checks import check_image
from monitor.errors import MonitorError
from monitor.geometry import apply_homography
from monitor.results import Registration, Warped

CONVENTION = (
    "pixel coordinates, origin at the top-left corner of the top-left pixel (centre of "
    "pixel [row, col] at (col + 0.5, row + 0.5)), x right, y down, full resolution; "
    "homography maps CURRENT onto BASELINE; a BASELINE point p is found in CURRENT at "
    "H^-1(p) + d(p), d = residual_grid (dx, dy in CURRENT px) on ny x nx nodes at "
    "x = j * W / (nx - 1), y = i * H / (ny - 1) of the BASELINE, cubic-convolution "
    "(Keys, a = -0.5) interpolation"
)

_MAGSAC_THRESHOLD_WORK_PX = 3.0  # inlier threshold at working resolution
_MIN_INLIER_RATIO = 0.10  # consistent matches / ratio-test matches
_PATCH = 48  # full-resolution refinement patch side (px)
_MIN_PATCH = 16  # smallest patch side, used near the image border
_SEARCH_FIRST_PX = 12.0  # largest model error the first refinement pass corrects
_SEARCH_SECOND_PX = 3.0
_MAX_REFINE_POINTS = 1024
_PATCH_MARGIN = 3  # extra border for smoothing and gradients
_LK_SIGMA = 1.0  # Gaussian pre-smoothing of refinement patches (px)
_LK_ITERATIONS = 6
_LK_CONVERGED = 0.01  # px
_MIN_PATCH_STD = 2.0  # grey levels (0..255)
_MIN_GRAD_ENERGY = 0.5  # smallest structure-tensor eigenvalue per pixel ((grey/px)^2)
_MIN_NCC = 0.6
_TRIM_FLOOR_PX = 0.3
_LAMBDAS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
_CV_FOLDS = 5
_LAMBDA_PROVISIONAL = 1e-2  # smoothness weight while matches are still being refined
_CV_TOLERANCE = 1.05  # prefer smoother fits within 5% of the best held-out RMSE
_KEEP_RESIDUAL_GAIN = 0.9  # keep the grid when held-out RMSE < gain * homography-only RMSE
_SIFT_MAX_FEATURES = 20000
_BRUTE_FORCE_PAIRS = 1e7  # exact matching below this many descriptor pairs, FLANN above


# --------------------------------------------------------------------------- checks


def _check_image(image: object, name: str) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise MonitorError(f"{name} must be a numpy array, got {type(image).__name__}")
    check_image(image, "H W | H W 1 | H W 3 | H W 4", name=name,
                dtype=(np.uint8, np.uint16))
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if min(image.shape[:2]) < 64:
        raise MonitorError(f"{name} is too small to register: {image.shape[1]}x{image.shape[0]} px")
    return image


def _check_registration(reg: object) -> Registration:
    if not isinstance(reg, Registration):
        raise MonitorError(f"expected a Registration, got {type(reg).__name__}")
    h = np.asarray(reg.homography, dtype=np.float64)
    if h.shape != (3, 3) or not np.all(np.isfinite(h)):
        raise MonitorError("registration homography must be a finite 3 x 3 matrix")
    if reg.residual_grid is not None:
        g = np.asarray(reg.residual_grid)
        if g.ndim != 3 or g.shape[2] != 2 or min(g.shape[:2]) < 3:
            raise MonitorError(f"residual grid must be ny x nx x 2 (>= 3 nodes), got {g.shape}")
    return reg


# --------------------------------------------------------------------------- images


def _work_grey(image: np.ndarray, max_px: int) -> tuple[np.ndarray, float, float]:
    """8-bit contrast-normalised grey image at working resolution and its (sx, sy)."""
    h, w = image.shape[:2]
    s = min(1.0, max_px / max(h, w))
    ww, wh = max(1, round(w * s)), max(1, round(h * s))
    src = image[:, :, :3] if image.ndim == 3 and image.shape[2] == 4 else image
    small = src if (ww, wh) == (w, h) else cv2.resize(src, (ww, wh), interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        small = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    grey = small.astype(np.float32)
    lo, hi = np.percentile(grey, (0.5, 99.5))
    if hi - lo < 1e-3:  # flat image: nothing to stretch
        grey8 = np.zeros(grey.shape, np.uint8)
    else:
        grey8 = np.clip((grey - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    return clahe.apply(grey8), ww / w, wh / h


def _grey_crop(image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Float32 grey crop ``image[y0:y1, x0:x1]`` on a 0..255 scale."""
    crop = image[y0:y1, x0:x1]
    if crop.ndim == 3:
        crop = cv2.cvtColor(np.ascontiguousarray(crop[:, :, :3]), cv2.COLOR_RGB2GRAY)
    out = crop.astype(np.float32)
    if image.dtype == np.uint16:
        out *= 1.0 / 257.0
    return out


# --------------------------------------------------------------------------- geometry


def _scale_h(sx: float, sy: float) -> np.ndarray:
    return np.diag([sx, sy, 1.0])


def _cubic_weights(g: np.ndarray, n: int) -> np.ndarray:
    """Cubic-convolution weights (Keys, a=-0.5) of grid coordinates ``g`` on ``n`` nodes.

    Returns an ``len(g) x n`` matrix; coordinates are clamped to ``[0, n - 1]`` and the
    virtual nodes beyond the ends use Keys' boundary condition
    ``f(-1) = 3 f(0) - 3 f(1) + f(2)``.
    """
    g = np.clip(np.asarray(g, dtype=np.float64).ravel(), 0.0, n - 1.0)
    i = np.minimum(np.floor(g).astype(np.int64), n - 2)
    t = g - i
    t2, t3 = t * t, t * t * t
    wts = np.stack(
        [
            (-t3 + 2 * t2 - t) / 2,
            (3 * t3 - 5 * t2 + 2) / 2,
            (-3 * t3 + 4 * t2 + t) / 2,
            (t3 - t2) / 2,
        ],
        axis=1,
    )
    ext = np.zeros((g.size, n + 2), dtype=np.float64)  # nodes -1 .. n
    np.put_along_axis(ext, i[:, None] + np.arange(4)[None, :], wts, axis=1)
    fold = np.zeros((n + 2, n), dtype=np.float64)
    fold[1 : n + 1] = np.eye(n)
    fold[0, :3] = (3.0, -3.0, 1.0)
    fold[n + 1, n - 3 :] = (1.0, -3.0, 3.0)
    return ext @ fold


def _grid_weights(
    pts_b: np.ndarray, baseline_shape: tuple[int, int], ny: int, nx: int
) -> tuple[np.ndarray, np.ndarray]:
    hb, wb = baseline_shape
    wx = _cubic_weights(pts_b[:, 0] * ((nx - 1) / wb), nx)
    wy = _cubic_weights(pts_b[:, 1] * ((ny - 1) / hb), ny)
    return wy, wx


def _eval_grid(grid: np.ndarray, pts_b: np.ndarray, baseline_shape: tuple[int, int]) -> np.ndarray:
    ny, nx = grid.shape[:2]
    wy, wx = _grid_weights(pts_b, baseline_shape, ny, nx)
    rows = (wy @ grid.reshape(ny, nx * 2)).reshape(len(pts_b), nx, 2)
    return np.einsum("njk,nj->nk", rows, wx)


def _design(pts_b: np.ndarray, baseline_shape: tuple[int, int], ny: int, nx: int) -> np.ndarray:
    wy, wx = _grid_weights(pts_b, baseline_shape, ny, nx)
    return (wy[:, :, None] * wx[:, None, :]).reshape(len(pts_b), ny * nx)


def _penalty(ny: int, nx: int) -> np.ndarray:
    """Second differences along x, along y and mixed (null space: affine fields)."""
    rows: list[np.ndarray] = []

    def node(i: int, j: int) -> int:
        return i * nx + j

    for i in range(ny):
        for j in range(1, nx - 1):
            r = np.zeros(ny * nx)
            r[[node(i, j - 1), node(i, j), node(i, j + 1)]] = (1.0, -2.0, 1.0)
            rows.append(r)
    for i in range(1, ny - 1):
        for j in range(nx):
            r = np.zeros(ny * nx)
            r[[node(i - 1, j), node(i, j), node(i + 1, j)]] = (1.0, -2.0, 1.0)
            rows.append(r)
    for i in range(ny - 1):
        for j in range(nx - 1):
            r = np.zeros(ny * nx)
            r[[node(i, j), node(i, j + 1), node(i + 1, j), node(i + 1, j + 1)]] = np.array(
                [1.0, -1.0, -1.0, 1.0]
            ) * math.sqrt(2.0)
            rows.append(r)
    return np.array(rows)


def _map_to_current(
    h: np.ndarray, grid: np.ndarray | None, pts_b: np.ndarray, baseline_shape: tuple[int, int]
) -> np.ndarray:
    q = apply_homography(np.linalg.inv(h), pts_b)
    if grid is not None:
        q = q + _eval_grid(grid, pts_b, baseline_shape)
    return q


# --------------------------------------------------------------------------- fitting


class _Fitter:
    """Least-squares fit of homography + smooth grid to BASELINE/CURRENT point pairs."""

    def __init__(self, baseline_shape: tuple[int, int], n: int) -> None:
        self.shape = baseline_shape
        self.n = n
        self.pen = _penalty(n, n) if n >= 3 else None

    def fit_h(self, pts_b: np.ndarray, pts_c: np.ndarray) -> np.ndarray | None:
        if len(pts_b) < 4:
            return None
        h, _ = cv2.findHomography(pts_c.astype(np.float64), pts_b.astype(np.float64), 0)
        if h is None or not np.all(np.isfinite(h)) or abs(h[2, 2]) < 1e-12:
            return None
        return h / h[2, 2]

    def fit(
        self, pts_b: np.ndarray, pts_c: np.ndarray, lam: float | None
    ) -> tuple[np.ndarray, np.ndarray | None] | None:
        """Fit H (and the grid when ``lam`` is not None); None when degenerate."""
        h = self.fit_h(pts_b, pts_c)
        if h is None or lam is None or self.pen is None:
            return None if h is None else (h, None)
        # alternate: grid on the homography's residuals, homography on what the grid
        # leaves; the penalty's null space is affine, which the homography absorbs
        a = _design(pts_b, self.shape, self.n, self.n)
        lhs = a.T @ a + (lam * len(pts_b) / a.shape[1]) * (self.pen.T @ self.pen)
        lhs += 1e-9 * np.eye(lhs.shape[0])
        for it in range(3):
            sol = np.linalg.solve(lhs, a.T @ (pts_c - apply_homography(np.linalg.inv(h), pts_b)))
            h2 = self.fit_h(pts_b, pts_c - a @ sol) if it < 2 else None
            if h2 is None:
                break
            h = h2
        return h, sol.reshape(self.n, self.n, 2)

    def errors(
        self, model: tuple[np.ndarray, np.ndarray | None], pts_b: np.ndarray, pts_c: np.ndarray
    ) -> np.ndarray:
        q = _map_to_current(model[0], model[1], pts_b, self.shape)
        e = np.hypot(*(q - pts_c).T)
        return np.where(np.isfinite(e), e, np.inf)

    def robust_fit(
        self, pts_b: np.ndarray, pts_c: np.ndarray, lam: float | None, floor: float
    ) -> tuple[tuple[np.ndarray, np.ndarray | None], np.ndarray] | None:
        keep = np.ones(len(pts_b), bool)
        model = None
        for _ in range(4):
            model = self.fit(pts_b[keep], pts_c[keep], lam)
            if model is None:
                return None
            err = self.errors(model, pts_b, pts_c)
            new_keep = err < max(3.0 * float(np.median(err[keep])), floor)
            if new_keep.sum() < 8 or np.array_equal(new_keep, keep):
                break
            keep = new_keep
        assert model is not None
        return model, keep

    def choose_lambda(self, pts_b: np.ndarray, pts_c: np.ndarray) -> tuple[float | None, float]:
        """Cross-validated choice of the smoothness weight; None = homography only."""
        n_pts = len(pts_b)
        if self.pen is None or n_pts < 4 * self.n * self.n:
            return None, math.nan
        folds = np.arange(n_pts) % _CV_FOLDS
        np.random.default_rng(0).shuffle(folds)
        scores: dict[float | None, float] = {}
        for lam in (None, *_LAMBDAS):
            sq = 0.0
            for k in range(_CV_FOLDS):
                train, test = folds != k, folds == k
                model = self.fit(pts_b[train], pts_c[train], lam)
                if model is None:
                    sq = math.inf
                    break
                e = self.errors(model, pts_b[test], pts_c[test])
                sq += float(np.sum(np.minimum(e, 10.0) ** 2))
            scores[lam] = math.sqrt(sq / n_pts)
        best = min(_LAMBDAS, key=lambda lam: scores[lam])
        # the smoothest weight whose held-out error is close to the best one
        best = max(lam for lam in _LAMBDAS if scores[lam] <= _CV_TOLERANCE * scores[best])
        if scores[best] < _KEEP_RESIDUAL_GAIN * scores[None]:
            return best, scores[best]
        return None, scores[None]


# --------------------------------------------------------------------------- refinement


def _refine(
    baseline: np.ndarray,
    current: np.ndarray,
    centres: np.ndarray,
    model: tuple[np.ndarray, np.ndarray | None],
    search: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Re-locate correspondences at full resolution around ``centres`` (BASELINE points).

    For each point a P x P BASELINE patch is compared with the CURRENT image resampled
    into the baseline frame through ``model`` (``M``: baseline -> current, linearised
    over the patch). The residual shift ``e`` (``M(u) = T(u + e)`` for the true map
    ``T``) is measured once by phase correlation (coarse, large capture range) and then
    by Lucas-Kanade iterations with a local gain and offset on lightly smoothed patches
    (phase correlation alone whitens the spectrum and so trusts aliased fine detail).
    The correspondence is ``(c, M(c - e))`` with the exact model; ``|e|`` is limited to
    ``search`` px.

    Returns
    -------
    tuple[numpy.ndarray, numpy.ndarray]
        Refined (pts_b, pts_c), N x 2 each; unreliable patches are dropped.
    """
    hb, wb = baseline.shape[:2]
    hc, wc = current.shape[:2]
    m = _PATCH_MARGIN
    h, grid = model
    centres = np.round(np.asarray(centres, dtype=np.float64).reshape(-1, 2))
    # patch side: _PATCH, smaller near the border (down to _MIN_PATCH), multiple of 4
    room = (
        np.minimum.reduce([centres[:, 0], centres[:, 1], wb - centres[:, 0], hb - centres[:, 1]])
        - m
    )
    sides = (np.minimum(_PATCH, 2 * room) // 4 * 4).astype(np.int64)
    use = sides >= _MIN_PATCH
    centres, sides = centres[use], sides[use]
    if len(centres) == 0:
        return np.zeros((0, 2)), np.zeros((0, 2))
    # local affine approximation of M at every centre (central differences)
    step = np.full((len(centres), 1), _PATCH / 4.0)
    probes = np.concatenate(
        [
            centres,
            centres + step * (1, 0),
            centres - step * (1, 0),
            centres + step * (0, 1),
            centres - step * (0, 1),
        ]
    )
    mapped = _map_to_current(h, grid, probes, (hb, wb)).reshape(5, len(centres), 2)
    q0 = mapped[0]
    jac = np.stack([mapped[1] - mapped[2], mapped[3] - mapped[4]], axis=2) / (2 * step[:, :, None])
    # the CURRENT crop (patch + margin + search range) must fit as well
    with np.errstate(invalid="ignore"):
        room_c = np.minimum.reduce([q0[:, 0], q0[:, 1], wc - q0[:, 0], hc - q0[:, 1]])
        stretch = np.abs(jac).sum(axis=2).max(axis=1)
        side_c = 2 * ((room_c - search - 3) / stretch - m)
        sides = np.minimum(sides, np.nan_to_num(side_c, nan=-1.0)) // 4 * 4
    sides = sides.astype(np.int64)
    out_b: list[np.ndarray] = []
    out_c: list[np.ndarray] = []
    windows: dict[int, np.ndarray] = {}
    smooth_kw = {"ksize": (0, 0), "sigmaX": _LK_SIGMA, "borderType": cv2.BORDER_REFLECT}

    for k in range(len(centres)):
        if not np.all(np.isfinite(jac[k])) or not np.all(np.isfinite(q0[k])):
            continue
        p = int(sides[k])
        if p < _MIN_PATCH:
            continue
        half, full = p // 2, p + 2 * m
        cx, cy = int(centres[k, 0]), int(centres[k, 1])
        x0, y0 = cx - half, cy - half
        if p not in windows:
            windows[p] = cv2.createHanningWindow((p, p), cv2.CV_32F).astype(np.float64)
        win = windows[p]
        wsum = float(win.sum())
        inner = (slice(m, m + p), slice(m, m + p))
        a_full = cv2.GaussianBlur(
            _grey_crop(baseline, x0 - m, y0 - m, x0 + p + m, y0 + p + m), **smooth_kw
        )
        gy_a, gx_a = np.gradient(a_full.astype(np.float64))
        a = a_full[inner].astype(np.float64)
        if float(a.std()) < _MIN_PATCH_STD:
            continue
        gx, gy = gx_a[inner], gy_a[inner]
        # structure tensor: reject edges (aperture problem) and flat patches
        sxx, syy, sxy = (win * gx * gx).sum(), (win * gy * gy).sum(), (win * gx * gy).sum()
        lam_min = 0.5 * (sxx + syy - math.hypot(sxx - syy, 2 * sxy))
        if lam_min / wsum < _MIN_GRAD_ENERGY:
            continue
        design = np.stack([gx.ravel(), gy.ravel(), a.ravel(), np.ones(p * p)], axis=1)
        wd = design * win.ravel()[:, None]
        normal = design.T @ wd
        # one CURRENT crop covering every shift the search may try
        reach = (half + m) * np.abs(jac[k]).sum(axis=1) + search + 2
        qx0, qy0 = int(math.floor(q0[k, 0] - reach[0])), int(math.floor(q0[k, 1] - reach[1]))
        qx1, qy1 = int(math.ceil(q0[k, 0] + reach[0])), int(math.ceil(q0[k, 1] + reach[1]))
        if qx0 < 0 or qy0 < 0 or qx1 > wc or qy1 > hc:
            continue
        crop = _grey_crop(current, qx0, qy0, qx1, qy1)
        c = centres[k]
        # patch pixel (i, j) is the baseline point u = (x0 - m + j + 0.5, y0 - m + i + 0.5)
        u00 = np.array([x0 - m + 0.5, y0 - m + 0.5])
        shift = np.zeros(2)
        ok = False
        ncc = 0.0
        for it in range(1 + _LK_ITERATIONS):
            t = q0[k] + jac[k] @ (u00 - shift - c) - 0.5 - (qx0, qy0)
            aff = np.hstack([jac[k], t[:, None]])
            b_full = cv2.warpAffine(
                crop,
                aff,
                (full, full),
                flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REPLICATE,
            )
            b = cv2.GaussianBlur(b_full, **smooth_kw)[inner].astype(np.float64)
            if it == 0:
                # coarse: b(u) = a(u - s), i.e. the model error is e = -s
                (sx, sy), _resp = cv2.phaseCorrelate(
                    (a - (a * win).sum() / wsum).astype(np.float32),
                    (b - (b * win).sum() / wsum).astype(np.float32),
                    win.astype(np.float32),
                )
                delta = -np.array([sx, sy])
            else:
                # b ~ g a + o + g grad(a) . e
                sol = np.linalg.solve(normal, wd.T @ b.ravel())
                if sol[2] <= 0.05:
                    break
                delta = sol[:2] / sol[2]
                fit = design @ sol
                bc = b.ravel() - (b.ravel() * win.ravel()).sum() / wsum
                fc = fit - (fit * win.ravel()).sum() / wsum
                ncc = float((win.ravel() * bc * fc).sum()) / math.sqrt(
                    float((win.ravel() * bc * bc).sum() * (win.ravel() * fc * fc).sum()) + 1e-12
                )
            shift = shift + delta
            if np.hypot(*shift) > min(p / 4, search):
                break
            if it > 0 and np.hypot(*delta) < _LK_CONVERGED:
                ok = True
                break
        if not ok or ncc < _MIN_NCC:
            continue
        out_b.append(c)
        out_c.append(c - shift)
    if not out_b:
        return np.zeros((0, 2)), np.zeros((0, 2))
    pts_b = np.array(out_b)
    return pts_b, _map_to_current(h, grid, np.array(out_c), (hb, wb))


def _candidates(
    pts: np.ndarray, weight: np.ndarray, shape: tuple[int, int], cells: int
) -> np.ndarray:
    """Refinement centres: per cell of a cells x cells grid over the BASELINE, the
    strongest inlier, or the cell centre when the cell holds none (weak texture that
    SIFT missed can still be good enough for patch matching)."""
    h, w = shape
    cx = np.clip((pts[:, 0] * cells / w).astype(np.int64), 0, cells - 1)
    cy = np.clip((pts[:, 1] * cells / h).astype(np.int64), 0, cells - 1)
    cell = cy * cells + cx
    order = np.lexsort((-weight, cell))
    first = np.ones(len(order), bool)
    first[1:] = cell[order][1:] != cell[order][:-1]
    chosen = pts[order[first]]
    empty = np.setdiff1d(np.arange(cells * cells), cell)
    centre = np.stack(
        [(empty % cells + 0.5) * w / cells, (empty // cells + 0.5) * h / cells], axis=1
    )
    return np.concatenate([chosen, centre])


# --------------------------------------------------------------------------- plausibility


def _check_plausible(h: np.ndarray, current_shape: tuple[int, int]) -> None:
    hc, wc = current_shape
    corners = np.array([[0, 0], [wc, 0], [wc, hc], [0, hc]], dtype=np.float64)
    den = corners @ h[2, :2] + h[2, 2]
    if np.any(den <= 0):
        raise MonitorError("implausible registration: the homography folds the image (horizon)")
    m = apply_homography(h, corners)
    edges = np.roll(m, -1, axis=0) - m
    cross = (
        edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1] - edges[:, 1] * np.roll(edges, -1, 0)[:, 0]
    )
    if np.any(cross <= 0):
        raise MonitorError("implausible registration: the homography flips or twists the image")
    # local area scale (Jacobian determinant) at the corners: det(H) / w^3
    local = np.linalg.det(h) / den**3
    scale = float(np.sqrt(abs(cv2.contourArea(m.astype(np.float32))) / (wc * hc)))
    if not 0.25 <= scale <= 4.0:
        raise MonitorError(f"implausible registration: scale {scale:.2f} outside 0.25..4")
    if np.any(local <= 0) or float(local.max() / local.min()) > 3.0:
        raise MonitorError(
            "implausible registration: perspective too strong for a flat painting "
            f"(local scale varies {float(local.max() / local.min()):.1f}x across the image)"
        )


# --------------------------------------------------------------------------- public API


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
    sift = cv2.SIFT_create(nfeatures=_SIFT_MAX_FEATURES)
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
    fitter = _Fitter(b_shape, int(residual_grid))
    tol = _MAGSAC_THRESHOLD_WORK_PX / min(scx, scy)
    model: tuple[np.ndarray, np.ndarray | None] = (h, None)
    if residual_grid and inl.sum() >= 4 * residual_grid**2:
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
        fitted = fitter.robust_fit(
            fb, fc, _LAMBDA_PROVISIONAL if residual_grid else None, _TRIM_FLOOR_PX
        )
        if fitted is None:
            break
        model = fitted[0]

    # 5. final fit: cross-validated smoothness, residual only when it helps
    # (chosen on the matches a provisional robust fit keeps, so that outliers do not
    # decide the smoothness)
    prelim = fitter.robust_fit(
        fb, fc, _LAMBDA_PROVISIONAL if residual_grid else None, _TRIM_FLOOR_PX
    )
    if prelim is None:
        raise MonitorError(f"{refuse}: the refined matches do not fit a homography")
    lam, _cv = fitter.choose_lambda(fb[prelim[1]], fc[prelim[1]])
    fitted = fitter.robust_fit(fb, fc, lam, _TRIM_FLOOR_PX)
    if fitted is None:
        raise MonitorError(f"{refuse}: the refined matches do not fit a homography")
    model, keep = fitted
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
    )


def baseline_to_current(points_xy: np.ndarray, reg: Registration) -> np.ndarray:
    """Map BASELINE points to CURRENT: ``H^-1(p) + d(p)``.

    Parameters
    ----------
    points_xy
        N x 2 array of (x, y) baseline full-resolution corner-origin coordinates.
    reg
        The registration.

    Returns
    -------
    numpy.ndarray
        N x 2 float64 CURRENT coordinates (NaN where the point maps beyond the horizon).
    """
    reg = _check_registration(reg)
    pts = np.asarray(points_xy, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise MonitorError(f"points must be N x 2 (x, y), got shape {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise MonitorError("points must be finite")
    grid = None if reg.residual_grid is None else np.asarray(reg.residual_grid, np.float64)
    return _map_to_current(np.asarray(reg.homography, np.float64), grid, pts, reg.baseline_shape)


def warp_to_baseline(
    image: np.ndarray,
    reg: Registration,
    *,
    image_scale: float = 1.0,
    out_shape: tuple[int, int] | None = None,
    out_scale: float = 1.0,
) -> Warped:
    """Resample CURRENT content onto the BASELINE grid (bicubic, in row strips).

    Parameters
    ----------
    image
        The CURRENT scan as float32 H x W or H x W x C, at ``image_scale`` (image pixel
        coordinates = ``image_scale`` x CURRENT full-resolution coordinates). For
        ``out_scale < 1`` pass an image already reduced to about that scale (the
        resampling does not low-pass filter).
    reg
        The registration.
    image_scale
        Scale of ``image`` relative to the full-resolution CURRENT scan.
    out_shape
        (rows, cols) of the output grid; default ``round(baseline_shape * out_scale)``.
    out_scale
        Output pixels per BASELINE full-resolution pixel.

    Returns
    -------
    Warped
        ``image``: the warped float32 image (0 outside the valid area); ``valid``: a
        bool mask, True where the source point lies inside ``image`` with a 1 px
        margin. Unpacks as ``image, valid``.

    Examples
    --------
    >>> reg = Registration(np.eye(3), (8, 8), (8, 8), 10, 10, 0.0, 0.0)
    >>> w = warp_to_baseline(np.ones((8, 8), np.float32), reg)
    >>> w.image.shape, bool(w.valid[4, 4])
    ((8, 8), True)
    """
    reg = _check_registration(reg)
    if not isinstance(image, np.ndarray) or not np.issubdtype(image.dtype, np.floating):
        raise MonitorError("image must be a float32 numpy array (e.g. linear light)")
    check_image(image, "H W | H W C", name="warp: image", min_side=2)
    if not (math.isfinite(image_scale) and image_scale > 0):
        raise MonitorError(f"image_scale must be > 0, got {image_scale}")
    if not (math.isfinite(out_scale) and out_scale > 0):
        raise MonitorError(f"out_scale must be > 0, got {out_scale}")
    hc, wc = reg.current_shape
    if abs(image.shape[0] - hc * image_scale) > 1.0 or abs(image.shape[1] - wc * image_scale) > 1.0:
        raise MonitorError(
            f"image is {image.shape[1]}x{image.shape[0]} px but the current scan at scale "
            f"{image_scale:g} would be {wc * image_scale:.0f}x{hc * image_scale:.0f} px"
        )
    hb, wb = reg.baseline_shape
    if out_shape is None:
        out_shape = (max(1, round(hb * out_scale)), max(1, round(wb * out_scale)))
    rows, cols = int(out_shape[0]), int(out_shape[1])
    if rows < 1 or cols < 1:
        raise MonitorError(f"out_shape must be positive, got {out_shape}")
    img = np.ascontiguousarray(image, dtype=np.float32)
    ih, iw = img.shape[:2]
    channels = 1 if img.ndim == 2 else img.shape[2]
    out = np.zeros((rows, cols) if img.ndim == 2 else (rows, cols, channels), np.float32)
    valid = np.zeros((rows, cols), bool)

    h_inv = np.linalg.inv(np.asarray(reg.homography, np.float64))
    grid = None if reg.residual_grid is None else np.asarray(reg.residual_grid, np.float64)
    xs = (np.arange(cols, dtype=np.float64) + 0.5) / out_scale
    wx = None
    if grid is not None:
        wx = _cubic_weights(xs * ((grid.shape[1] - 1) / wb), grid.shape[1])
        gx_cols = np.einsum("ijk,nj->ink", grid, wx)  # ny x cols x 2
    strip = max(1, 2_000_000 // cols)
    for r0 in range(0, rows, strip):
        r1 = min(rows, r0 + strip)
        ys = (np.arange(r0, r1, dtype=np.float64) + 0.5) / out_scale
        den = ys[:, None] * h_inv[2, 1] + xs[None, :] * h_inv[2, 0] + h_inv[2, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            qx = (ys[:, None] * h_inv[0, 1] + xs[None, :] * h_inv[0, 0] + h_inv[0, 2]) / den
            qy = (ys[:, None] * h_inv[1, 1] + xs[None, :] * h_inv[1, 0] + h_inv[1, 2]) / den
        if grid is not None:
            wy = _cubic_weights(ys * ((grid.shape[0] - 1) / hb), grid.shape[0])
            d = np.einsum("ri,ick->rck", wy, gx_cols)
            qx += d[..., 0]
            qy += d[..., 1]
        ux = qx * image_scale
        uy = qy * image_scale
        ok = (den > 0) & (ux >= 1.0) & (ux <= iw - 1.0) & (uy >= 1.0) & (uy <= ih - 1.0)
        mx = np.where(ok, ux - 0.5, -10.0).astype(np.float32)
        my = np.where(ok, uy - 0.5, -10.0).astype(np.float32)
        for c0 in range(0, channels, 4):
            src = img if img.ndim == 2 else np.ascontiguousarray(img[:, :, c0 : c0 + 4])
            res = cv2.remap(src, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            if img.ndim == 2:
                out[r0:r1] = res
            else:
                out[r0:r1, :, c0 : c0 + 4] = res.reshape(r1 - r0, cols, -1)
        out[r0:r1][~ok] = 0.0
        valid[r0:r1] = ok
    return Warped(out, valid)


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
        "convention": CONVENTION,
    }
