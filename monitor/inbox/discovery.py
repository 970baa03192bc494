"""Finding the inbox's files: which are scans, which are partial, junk or still being written."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.inbox.records import InboxFile

PROCESSED_DIR = "_processed"


QUARANTINE_DIR = "_quarantine"


PENDING_DIR = "inbox-pending"


SIDECAR_SUFFIXES = (".json", ".toml")


REASON_SUFFIX = ".reason.txt"


#: Suffixes of files still being copied (never touched).
PARTIAL_SUFFIXES = frozenset({".part", ".partial", ".tmp", ".crdownload", ".filepart", ".download"})


#: File names desktop systems leave behind (never touched).
JUNK_NAMES = frozenset({"thumbs.db", "desktop.ini", ".ds_store"})


def resolve_paths(
    home: Path, settings: Settings, inbox: Path | None = None, reports: Path | None = None
) -> tuple[Path, Path]:
    """Absolute inbox and reports folders.

    Parameters
    ----------
    home
        Absolute data home.
    settings
        ``inbox`` / ``reports`` settings (empty: ``<home>/inbox``, ``<home>/reports``).
    inbox, reports
        Explicit folders (the CLI's ``--inbox`` / ``--reports``), or None.

    Returns
    -------
    tuple of Path
        (inbox, reports), absolute and user-expanded.
    """
    inbox_path = inbox or (Path(settings.inbox) if settings.inbox else home / "inbox")
    reports_path = reports or (Path(settings.reports) if settings.reports else home / "reports")
    return inbox_path.expanduser().absolute(), reports_path.expanduser().absolute()


def _skipped_name(name: str) -> bool:
    lower = name.lower()
    return (
        name.startswith((".", "~"))
        or lower in JUNK_NAMES
        or Path(lower).suffix in PARTIAL_SUFFIXES
        or lower.endswith(REASON_SUFFIX)
    )


def discover(
    inbox: Path, *, settle_s: float = 0.0, now: float | None = None, exclude: Sequence[Path] = ()
) -> tuple[list[InboxFile], list[str], list[str]]:
    """Find the files of an inbox, in a stable order.

    Top-level folders whose name starts with ``_`` or ``.`` (``_processed``,
    ``_quarantine``) and the folders in ``exclude`` are skipped. Hidden
    files, files still being copied (``.part``, ``.tmp`` ...) and desktop
    junk are never touched; ``.json`` / ``.toml`` files are sidecars of the
    image with the same stem.

    Parameters
    ----------
    inbox
        The inbox folder.
    settle_s
        Files (or their sidecars) modified less than this many seconds ago are
        left for the next pass.
    now
        Current time (``time.time()`` when None).
    exclude
        Folders inside the inbox to skip (e.g. the reports folder).

    Returns
    -------
    tuple
        (files to handle, files still settling, ignored entries), paths as
        strings relative to the inbox.
    """
    if not inbox.is_dir():
        raise MonitorError(f"no inbox folder at {inbox}")
    now = time.time() if now is None else now
    skip = {p.resolve() for p in exclude}
    files: list[InboxFile] = []
    waiting: list[str] = []
    ignored: list[str] = []

    def settled(*paths: Path | None) -> bool:
        try:
            return all(p is None or now - p.stat().st_mtime >= settle_s for p in paths)
        except OSError:
            return False

    def rel(path: Path) -> str:
        return path.relative_to(inbox).as_posix()

    for entry in sorted(inbox.iterdir()):
        if entry.name.startswith(("_", ".")) or entry.resolve() in skip:
            continue
        if entry.is_file():
            if _skipped_name(entry.name):
                continue
            if not settled(entry):
                waiting.append(rel(entry))
                continue
            loose = "file is not in an artwork folder; put it in INBOX/<artwork-slug>/"
            files.append(InboxFile(entry, rel(entry), None, None, loose))
            continue
        if not entry.is_dir():
            continue
        children = sorted(p for p in entry.iterdir() if not _skipped_name(p.name))
        sidecars: dict[str, list[Path]] = {}
        images: list[Path] = []
        for child in children:
            if child.is_dir() or not child.is_file():
                ignored.append(rel(child))
            elif child.suffix.lower() in SIDECAR_SUFFIXES:
                sidecars.setdefault(child.stem, []).append(child)
            else:
                images.append(child)
        stems: dict[str, int] = {}
        for image in images:
            stems[image.stem] = stems.get(image.stem, 0) + 1
        for image in images:
            found = sidecars.get(image.stem, [])
            problem: str | None = None
            if len(found) > 1:
                problem = f"two sidecars for {image.name}: {', '.join(p.name for p in found)}"
            elif found and stems[image.stem] > 1:
                problem = (f"sidecar {found[0].name} is shared by several images "
                           f"named {image.stem}.*")
            sidecar = found[0] if found else None
            if not settled(image, *found):
                waiting.append(rel(image))
                continue
            files.append(InboxFile(image, rel(image), entry.name, sidecar, problem))
        for stem, found in sidecars.items():
            if stem not in stems:
                ignored.extend(rel(p) for p in found)
    return files, waiting, ignored
