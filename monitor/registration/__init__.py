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

from monitor.registration.estimate import (  # noqa: F401
    register,
)
from monitor.registration.features import (  # noqa: F401
    _check_plausible,
)
from monitor.registration.summary import (  # noqa: F401
    CONVENTION,
    corner_error,
    registration_to_dict,
)
from monitor.registration.warp import (  # noqa: F401
    baseline_to_current,
    warp_to_baseline,
)

__all__ = [
    "CONVENTION",
    "baseline_to_current",
    "corner_error",
    "register",
    "registration_to_dict",
    "warp_to_baseline",
]
