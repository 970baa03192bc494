"""Small read-only queries the viewer needs beside :mod:`monitor.store.repository`.

Nothing here writes to the database. Every file path that comes out of the
database is checked to lie inside the data home (:func:`inside_home`) before
the viewer reads it, so a tampered row cannot make the server read elsewhere.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.errors import MonitorError
from monitor.store.db import Store
from monitor.store.models import Artwork, Scan
from monitor.store.repository import ArtworkInfo, ScanInfo, list_artworks, list_scans

#: Largest id accepted from a request (SQLite integers are 64-bit signed).
MAX_ID = 2**63 - 1
_ID_PATTERN = re.compile(r"[0-9]{1,19}")
#: Artwork fields a search looks at (an accession number when the store has one).
SEARCH_FIELDS = ("slug", "title", "artist", "accession_number", "accession")


class NotFound(MonitorError):
    """Nothing in the store has this id (or the id is not one)."""


class Refused(MonitorError):
    """The store names a file outside the data home: it is not served."""


def parse_id(text: str) -> int:
    """A positive database id from request text, or :class:`NotFound`.

    Examples
    --------
    >>> parse_id("12")
    12
    >>> parse_id("9" * 40)
    Traceback (most recent call last):
    ...
    monitor.web.queries.NotFound: no such id
    """
    if not _ID_PATTERN.fullmatch(text) or not 0 < int(text) <= MAX_ID:
        raise NotFound("no such id")
    return int(text)


def inside_home(home: Path, path: Path) -> Path:
    """``path`` resolved, if it lies inside ``home`` (links followed); else :class:`Refused`.

    Examples
    --------
    >>> inside_home(Path("/h"), Path("/h/objects/ab/x.png")).as_posix()
    '/h/objects/ab/x.png'
    >>> inside_home(Path("/h"), Path("/h/objects/../../etc/passwd"))
    Traceback (most recent call last):
    ...
    monitor.web.queries.Refused: the store names a file outside its data home
    """
    root = home.resolve()
    resolved = (home / path).resolve()
    if not resolved.is_relative_to(root):
        raise Refused("the store names a file outside its data home")
    return resolved


def search_artworks(store: Store, query: str = "") -> list[ArtworkInfo]:
    """Artworks whose slug, title, artist or accession number contains ``query``.

    Case-insensitive; an empty query lists them all (by slug).

    Parameters
    ----------
    store
        The open store.
    query
        Text to look for.

    Returns
    -------
    list of ArtworkInfo
    """
    needle = query.strip().casefold()
    found = []
    for art in list_artworks(store):
        values = art.to_dict()
        if not needle or any(
            needle in str(values[f]).casefold() for f in SEARCH_FIELDS if values.get(f)
        ):
            found.append(art)
    return found


def scan_by_id(store: Store, scan_id: int) -> ScanInfo:
    """One stored scan by its id.

    Parameters
    ----------
    store
        The open store.
    scan_id
        Its id.

    Returns
    -------
    ScanInfo
    """
    with Session(store.engine) as session:
        slug = session.scalar(
            select(Artwork.slug).join(Scan, Scan.artwork_id == Artwork.id).where(Scan.id == scan_id)
        )
    if slug is None:
        raise NotFound(f"no scan {scan_id}")
    for scan in list_scans(store, slug):
        if scan.id == scan_id:
            return scan
    raise NotFound(f"no scan {scan_id}")
