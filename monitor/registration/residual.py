"""The residual model: a smooth bicubic displacement grid, cross-validated least squares."""

from __future__ import annotations

import math

import cv2
import numpy as np

from monitor.geometry import apply_homography

_LAMBDAS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


_CV_FOLDS = 5


_CV_TOLERANCE = 1.05  # prefer smoother fits within 5% of the best held-out RMSE


_KEEP_RESIDUAL_GAIN = 0.9  # keep the grid when held-out RMSE < gain * homography-only RMSE


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
