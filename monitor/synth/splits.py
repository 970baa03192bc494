"""The train / validation / test splits: which paintings and which seeds each may use."""

from __future__ import annotations

from pathlib import Path

from monitor.errors import MonitorError

#: Which of ``../shared/paintings`` each use may see (file stems). Training
#: never sees the validation or test paintings; the benchmark's test pairs use
#: only the test paintings (plus procedural canvases with test seeds).
TRAIN_PAINTINGS = (
    "hokusai_great_wave_off_kanagawa",
    "monticelli_bouquet_of_flowers",
    "vangogh_night_cafe",
)


VALIDATION_PAINTINGS = ("turner_the_shipwreck",)


TEST_PAINTINGS = (
    "vangogh_starry_night",
    "vangogh_wheat_field_with_cypresses",
    "vangogh_self_portrait_straw_hat",
    "gauguin_three_tahitian_women",
)


#: Seed ranges of synthetic pairs, disjoint by use.
TRAIN_SEEDS = range(1_000_000, 2_000_000)


VALIDATION_SEEDS = range(2_000_000, 2_100_000)


TEST_SEEDS = range(0, 100_000)


def paintings_for(split: str, root: Path | None = None) -> list[Path]:
    """The paintings of one split (``train``, ``validation``, ``test``) that are present.

    Returns an empty list when ``../shared/paintings`` is absent.
    """
    names = {"train": TRAIN_PAINTINGS, "validation": VALIDATION_PAINTINGS, "test": TEST_PAINTINGS}
    if split not in names:
        raise MonitorError(f"unknown split {split!r}; use train, validation or test")
    return [p for p in list_paintings(root) if p.stem in names[split]]


def list_paintings(root: Path | None = None) -> list[Path]:
    """JPEG photographs of paintings usable as albedo.

    Parameters
    ----------
    root
        Folder to list; default ``../shared/paintings`` relative to the repository
        root (the folder above the ``monitor`` package).

    Returns
    -------
    list of Path
        Sorted ``*.jpg`` / ``*.jpeg`` files; empty when the folder is absent.
    """
    if root is None:
        root = Path(__file__).resolve().parents[3] / "shared" / "paintings"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.suffix.lower() in {".jpg", ".jpeg"})
