"""Artworks: add, get, list."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from monitor.errors import MonitorError
from monitor.store.db import Store
from monitor.store.models import Artwork
from monitor.store.repository.records import (
    LOAN_FIELDS,
    ArtworkInfo,
    _artwork_info,
    _db_error,
    _get_artwork,
    _optional_text,
    _positive,
    validate_slug,
)


def add_artwork(
    store: Store,
    slug: str,
    title: str,
    *,
    artist: str | None = None,
    date: str | None = None,
    medium: str | None = None,
    width_mm: float | None = None,
    height_mm: float | None = None,
    location: str | None = None,
    notes: str | None = None,
    **loan: str | None,
) -> ArtworkInfo:
    """Register a new artwork.

    Parameters
    ----------
    store
        The open store.
    slug
        Stable id (see :func:`validate_slug`).
    title
        Title of the work (required, non-empty).
    artist, date, medium, location, notes
        Free-text identification (stored as given, escaped when rendered).
    width_mm, height_mm
        Dimensions of the work in millimetres.
    **loan
        Loan fields (:data:`LOAN_FIELDS`): ``accession_number``, ``owner``,
        ``venue``, ``exhibition``, ``frame``, ``glazing``.

    Returns
    -------
    ArtworkInfo
        The stored artwork.
    """
    validate_slug(slug)
    unknown = sorted(set(loan) - set(LOAN_FIELDS))
    if unknown:
        raise MonitorError(f"unknown artwork field(s): {', '.join(unknown)}")
    title_clean = _optional_text("title", title, 500)
    if title_clean is None:
        raise MonitorError("title must not be empty")
    info = ArtworkInfo(
        slug=slug,
        title=title_clean,
        artist=_optional_text("artist", artist, 500),
        date=_optional_text("date", date, 100),
        medium=_optional_text("medium", medium, 500),
        width_mm=_positive("width_mm", width_mm),
        height_mm=_positive("height_mm", height_mm),
        location=_optional_text("location", location, 500),
        notes=_optional_text("notes", notes, 100_000),
        **{k: _optional_text(k, v, LOAN_FIELDS[k]) for k, v in loan.items()},
    )
    try:
        with Session(store.engine) as session, session.begin():
            if session.scalar(select(Artwork.id).where(Artwork.slug == slug)) is not None:
                raise MonitorError(f"artwork {slug!r} already exists")
            session.add(Artwork(**asdict(info)))
    except IntegrityError as exc:
        raise MonitorError(f"artwork {slug!r} already exists") from exc
    except SQLAlchemyError as exc:
        raise _db_error("adding the artwork", exc) from exc
    return info


def update_artwork(store: Store, slug: str, **changes: str | float | None) -> ArtworkInfo:
    """Change an artwork's identification or loan fields (fields not given are kept).

    Parameters
    ----------
    store
        The open store.
    slug
        Artwork id.
    **changes
        Any of ``title``, ``artist``, ``date``, ``medium``, ``width_mm``,
        ``height_mm``, ``location``, ``notes`` and :data:`LOAN_FIELDS`;
        ``None`` keeps a value, an empty string clears a text field.

    Returns
    -------
    ArtworkInfo
        The artwork as now stored.
    """
    text_fields = {"title": 500, "artist": 500, "date": 100, "medium": 500, "location": 500,
                   "notes": 100_000, **LOAN_FIELDS}
    unknown = sorted(set(changes) - set(text_fields) - {"width_mm", "height_mm"})
    if unknown:
        raise MonitorError(f"unknown artwork field(s): {', '.join(unknown)}")
    clean: dict[str, object] = {}
    for name, value in changes.items():
        if value is None:
            continue
        if name in ("width_mm", "height_mm"):
            clean[name] = _positive(name, float(value))
        else:
            clean[name] = _optional_text(name, str(value), text_fields[name])
    if "title" in clean and clean["title"] is None:
        raise MonitorError("title must not be empty")
    try:
        with Session(store.engine) as session, session.begin():
            art = _get_artwork(session, slug)
            for name, new in clean.items():
                setattr(art, name, new)
            session.flush()
            return _artwork_info(art)
    except SQLAlchemyError as exc:
        raise _db_error("updating the artwork", exc) from exc


def get_artwork(store: Store, slug: str) -> ArtworkInfo:
    """Identification of one artwork.

    Parameters
    ----------
    store
        The open store.
    slug
        Artwork id.

    Returns
    -------
    ArtworkInfo
        The artwork.
    """
    with Session(store.engine) as session:
        return _artwork_info(_get_artwork(session, slug))


def list_artworks(store: Store) -> list[ArtworkInfo]:
    """All artworks, by slug.

    Parameters
    ----------
    store
        The open store.

    Returns
    -------
    list of ArtworkInfo
        The artworks.
    """
    with Session(store.engine) as session:
        return [_artwork_info(a) for a in session.scalars(select(Artwork).order_by(Artwork.slug))]
