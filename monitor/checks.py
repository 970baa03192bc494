"""Entry checks of the stages, in the manner of kornia's ``KORNIA_CHECK_SHAPE``.

Every stage checks its inputs at entry with one of these and fails with one
:class:`~monitor.errors.MonitorError` of one line naming the stage, the
argument, what was expected and what came::

    check_image(baseline, "H W 3", name="change: baseline", dtype=np.float32)
    check_mask(valid, baseline.shape[:2], name="change: valid")

A layout is a space-separated list of dimensions: a letter (or word) names a
free size (bound on first use, the same name must then have the same size),
a number is a fixed size, ``*`` is any size. Alternatives are separated by
``|`` (``"H W | H W 3"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from monitor.errors import MonitorError

__all__ = ["check_image", "check_mask", "check_pair", "check_same_shape", "parse_layout"]


def parse_layout(layout: str) -> list[list[str]]:
    """The alternatives of a layout string, each a list of dimension tokens.

    Parameters
    ----------
    layout
        Dimension tokens separated by spaces (``"H W 3"``); alternatives by ``|``.

    Returns
    -------
    list of list of str
        One token list per alternative.

    Examples
    --------
    >>> parse_layout("H W | H W 3")
    [['H', 'W'], ['H', 'W', '3']]
    """
    alternatives = [alt.split() for alt in layout.split("|")]
    if not alternatives or any(not alt for alt in alternatives):
        raise ValueError(f"empty layout in {layout!r}")
    return alternatives


def _matches(
    shape: tuple[int, ...], tokens: list[str], dims: dict[str, int]
) -> dict[str, int] | None:
    if len(shape) != len(tokens):
        return None
    bound = dict(dims)
    for size, token in zip(shape, tokens, strict=True):
        if token == "*":
            continue
        if token.isdigit():
            if size != int(token):
                return None
        elif bound.setdefault(token, size) != size:
            return None
    return bound


def _shape_of(x: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in x.shape)


def _dtype_name(x: Any) -> str:
    return str(x.dtype).removeprefix("torch.")


def check_image(
    x: Any,
    layout: str,
    *,
    name: str = "image",
    dtype: Any | Sequence[Any] | None = None,
    range: tuple[float, float] | None = None,  # noqa: A002 - the kornia-style keyword
    finite: bool = False,
    min_side: int | None = None,
    dims: dict[str, int] | None = None,
) -> dict[str, int]:
    """Check an array or tensor's shape (a layout), dtype and value range.

    Parameters
    ----------
    x
        A numpy array or a torch tensor.
    layout
        Expected layout, e.g. ``"H W 3"``, ``"3 H W"``, ``"H W | H W 3"``.
    name
        How the message names the argument (``"stage: argument"``).
    dtype
        Allowed dtype(s) (numpy dtypes, or torch dtypes for tensors).
    range
        Inclusive ``(lo, hi)`` bounds on the (finite) values.
    finite
        Require every value to be finite.
    min_side
        Smallest allowed size of the first two named dimensions (H, W).
    dims
        Sizes already bound by an earlier check (names -> sizes).

    Returns
    -------
    dict
        The named dimensions' sizes (``{"H": 480, "W": 640}``).

    Raises
    ------
    MonitorError
        One line naming ``name``, the expectation and what came.

    Examples
    --------
    >>> check_image(np.zeros((4, 5, 3), np.float32), "H W 3", dtype=np.float32)
    {'H': 4, 'W': 5}
    >>> check_image(np.zeros((4, 5)), "H W 3", name="change: baseline")
    Traceback (most recent call last):
    ...
    monitor.errors.MonitorError: change: baseline must be H x W x 3, got shape (4, 5)
    """
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise MonitorError(f"{name} must be an array, got {type(x).__name__}")
    shape = _shape_of(x)
    bound: dict[str, int] | None = None
    alternatives = parse_layout(layout)
    for tokens in alternatives:
        bound = _matches(shape, tokens, dims or {})
        if bound is not None:
            break
    if bound is None:
        wanted = " or ".join(" x ".join(t) for t in alternatives)
        raise MonitorError(f"{name} must be {wanted}, got shape {shape}")
    if dtype is not None:
        allowed = tuple(dtype) if isinstance(dtype, list | tuple) else (dtype,)
        if not any(_same_dtype(x, d) for d in allowed):
            names = " or ".join(_allowed_name(d) for d in allowed)
            raise MonitorError(f"{name} must be {names}, got {_dtype_name(x)}")
    if min_side is not None:
        sides = [v for k, v in bound.items() if not k.isdigit()][:2] or list(shape[:2])
        if sides and min(sides) < min_side:
            raise MonitorError(
                f"{name} is too small: {shape} (at least {min_side} px a side)"
            )
    if finite or range is not None:
        values = _as_numpy(x)
        if finite and not np.isfinite(values).all():
            raise MonitorError(f"{name} must be finite (it holds NaN or infinity)")
        if range is not None and values.size:
            v = values[np.isfinite(values)] if values.dtype.kind == "f" else values
            if v.size and (v.min() < range[0] or v.max() > range[1]):
                raise MonitorError(
                    f"{name} must lie in [{range[0]:g}, {range[1]:g}], "
                    f"got [{float(v.min()):.4g}, {float(v.max()):.4g}]"
                )
    return {k: v for k, v in bound.items() if not k.isdigit()}


def _same_dtype(x: Any, d: Any) -> bool:
    if isinstance(x, np.ndarray):
        try:
            return bool(x.dtype == np.dtype(d))
        except TypeError:
            return False
    return bool(x.dtype == d)


def _allowed_name(d: Any) -> str:
    try:
        return str(np.dtype(d))
    except TypeError:
        return str(d).removeprefix("torch.")


def _as_numpy(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    return np.asarray(x.detach().cpu().numpy())


def check_mask(
    mask: Any, shape: tuple[int, ...], *, name: str = "mask", nonempty: str | None = None
) -> None:
    """Check a bool mask of a given shape, optionally that it is not all False.

    Parameters
    ----------
    mask
        numpy array or torch tensor.
    shape
        Expected shape.
    name
        How the message names it.
    nonempty
        If given, the message when no pixel is set.

    Raises
    ------
    MonitorError
        Wrong shape, not bool, or empty.

    Examples
    --------
    >>> check_mask(np.ones((2, 2), bool), (2, 2))
    >>> check_mask(np.ones((2, 2), np.uint8), (2, 2), name="pair: valid")
    Traceback (most recent call last):
    ...
    monitor.errors.MonitorError: pair: valid must be a bool mask, got uint8
    """
    if not hasattr(mask, "shape") or not hasattr(mask, "dtype"):
        raise MonitorError(f"{name} must be an array, got {type(mask).__name__}")
    if _shape_of(mask) != tuple(shape):
        raise MonitorError(f"{name} must have shape {tuple(shape)}, got {_shape_of(mask)}")
    if _dtype_name(mask) != "bool":
        raise MonitorError(f"{name} must be a bool mask, got {_dtype_name(mask)}")
    if nonempty is not None and not bool(mask.any()):
        raise MonitorError(nonempty)


def check_same_shape(stage: str, **arrays: Any) -> None:
    """Check that named arrays share one shape.

    Parameters
    ----------
    stage
        The stage named in the message.
    **arrays
        Name -> numpy array or torch tensor.

    Examples
    --------
    >>> check_same_shape("change", baseline=np.zeros((2, 2)), current=np.zeros((2, 3)))
    Traceback (most recent call last):
    ...
    monitor.errors.MonitorError: change: shapes differ (baseline (2, 2), current (2, 3))
    """
    shapes = {k: _shape_of(v) for k, v in arrays.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{k} {s}" for k, s in shapes.items())
        raise MonitorError(f"{stage}: shapes differ ({listed})")


def check_pair(stage: str, baseline: Any, current: Any, valid: Any) -> dict[str, int]:
    """Entry check of a change stage: two H x W x 3 scans on one grid and their overlap mask.

    Parameters
    ----------
    stage
        Name of the stage, first word of the message.
    baseline, current
        H x W x 3 arrays (current warped onto the baseline grid).
    valid
        H x W bool, where the warped current has data; must not be empty.

    Returns
    -------
    dict
        ``{"H": ..., "W": ...}``.

    Examples
    --------
    >>> z = np.zeros((4, 4, 3), np.float32)
    >>> check_pair("change", z, z, np.zeros((4, 4), bool))
    Traceback (most recent call last):
    ...
    monitor.errors.MonitorError: change: the two scans do not overlap
    """
    dims = check_image(baseline, "H W 3", name=f"{stage}: baseline")
    if _shape_of(current) != _shape_of(baseline) or _shape_of(valid) != _shape_of(baseline)[:2]:
        raise MonitorError(
            f"{stage}: shapes differ (baseline {_shape_of(baseline)}, current "
            f"{_shape_of(current)}, valid {_shape_of(valid)})"
        )
    check_mask(valid, _shape_of(baseline)[:2], name=f"{stage}: valid",
               nonempty=f"{stage}: the two scans do not overlap")
    return dims
