"""The comparison runner and output writer that the store calls back (CLI and inbox alike).

:func:`monitor.store.repository.compare_and_store` is handed a ``run`` and a
``write`` function so that the store never imports the algorithms. These are
the project's defaults, shared by ``monitor compare SLUG`` and the inbox pass:
the pipeline (torch, OpenCV, ...) is imported only when a comparison must be
computed, so commands that find the comparison stored stay quick.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from monitor.config import Settings
from monitor.results import Comparison, Light

__all__ = ["pipeline_runner", "write_comparison"]


def pipeline_runner(
    settings: Settings,
) -> Callable[[Path, Path, Light, float | None], Comparison]:
    """A ``run(baseline, current, light, px_per_mm)`` that compares with ``settings``.

    Parameters
    ----------
    settings
        Comparison settings (method, device, limits...).

    Returns
    -------
    Callable
        ``run(base: Path, cur: Path, light: Light, px_per_mm: float | None) -> Comparison``,
        :func:`monitor.pipeline.compare` imported at the first call.

    Examples
    --------
    >>> run = pipeline_runner(Settings())
    >>> callable(run)
    True
    """

    def run(base: Path, cur: Path, light: Light, px_per_mm: float | None) -> Comparison:
        from monitor.pipeline import compare  # the algorithms load only when work is due

        return compare(base, cur, settings, light=light, px_per_mm=px_per_mm)

    return run


def write_comparison(comparison: Comparison, out_dir: Path) -> Mapping[str, Path]:
    """Write a comparison's files into ``out_dir`` (:func:`monitor.pipeline.write_outputs`).

    Parameters
    ----------
    comparison
        The result of a comparison.
    out_dir
        Folder to write (created).

    Returns
    -------
    Mapping
        Artifact name -> path.

    Examples
    --------
    >>> callable(write_comparison)
    True
    """
    from monitor.pipeline import write_outputs

    return write_outputs(comparison, out_dir)
