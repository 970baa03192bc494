"""Queries, transactions and the content-addressed file store of the artwork history.

Every function takes an open :class:`monitor.store.db.Store` (data home +
engine) and returns small frozen dataclasses, never ORM objects, so callers
hold no session.

Files (scans and comparison artifacts) live under ``<home>/objects`` named by
the sha256 of their bytes (``objects/ab/abcdef...<suffix>``): the same image
ingested twice is stored once. Files are copied to a temporary name in
``<home>/tmp`` and renamed into place, so a reader never sees half a file.
A comparison and its regions are written in one transaction; if it fails, the
files it added are removed again (no partial row, no orphan file).

This module never imports the algorithms: a comparison is computed by a
``run`` function the caller passes in (the CLI passes
:func:`monitor.pipeline.compare`), and its files are written by a ``write``
function (:func:`monitor.pipeline.write_outputs`).
"""

from __future__ import annotations

from monitor.results import RunFn, WriteFn  # noqa: F401  (named here by the store's callers)
from monitor.store.repository.artworks import (  # noqa: F401
    add_artwork,
    get_artwork,
    list_artworks,
    update_artwork,
)
from monitor.store.repository.blobs import (  # noqa: F401
    PAUSE_ENV,
    PAUSE_POINTS,
    _remove_unreferenced,
    put_object,
    sha256_file,
)
from monitor.store.repository.comparisons import (  # noqa: F401
    NON_RESULT_SETTINGS,
    annotate_comparison,
    cache_key,
    check_order,
    compare_and_store,
    comparison_detail,
    comparison_inputs,
    find_comparison,
    record_comparison,
)
from monitor.store.repository.records import (  # noqa: F401
    ANNOTATION_FIELDS,
    LOAN_FIELDS,
    SLUG_PATTERN,
    Annotation,
    ArtworkHistory,
    ArtworkInfo,
    ComparisonDetail,
    HistoryEntry,
    IngestResult,
    ReaderFn,
    RegionSummary,
    ScanInfo,
    ScanMeta,
    StoredComparison,
    TrackPoint,
    _exif_time,
    check_text,
    no_artwork_message,
    parse_time,
    to_utc,
    validate_slug,
)
from monitor.store.repository.scans import (  # noqa: F401
    ingest_capture,
    ingest_scan,
    list_scans,
    remove_scan,
    select_pair,
)
from monitor.store.repository.trends import (  # noqa: F401
    HISTORY_CSV_COLUMNS,
    TREND_TOLERANCE,
    history,
    history_rows,
    latest_comparison_id,
    peak_mm,
    trend,
)
from monitor.store.repository.upkeep import (  # noqa: F401
    StoreProblem,
    VerifyReport,
    collect_garbage,
    verify_store,
)

__all__ = [
]
