"""Artwork history store: SQLite (or any SQLAlchemy database) + content-addressed files.

See :mod:`monitor.store.db` for the data home, the engine and migrations, and
:mod:`monitor.store.repository` for the library API.
"""

from monitor.store.db import Store, init_home, open_store, resolve_home
from monitor.store.repository import (
    ArtworkHistory,
    ArtworkInfo,
    ComparisonDetail,
    HistoryEntry,
    IngestResult,
    ScanInfo,
    ScanMeta,
    StoredComparison,
    StoreProblem,
    VerifyReport,
    add_artwork,
    compare_and_store,
    comparison_detail,
    history,
    ingest_scan,
    latest_comparison_id,
    list_scans,
    validate_slug,
    verify_store,
)

__all__ = [
    "ArtworkHistory",
    "ArtworkInfo",
    "ComparisonDetail",
    "HistoryEntry",
    "IngestResult",
    "ScanInfo",
    "ScanMeta",
    "Store",
    "StoreProblem",
    "StoredComparison",
    "VerifyReport",
    "add_artwork",
    "compare_and_store",
    "comparison_detail",
    "history",
    "ingest_scan",
    "init_home",
    "latest_comparison_id",
    "list_scans",
    "open_store",
    "resolve_home",
    "validate_slug",
    "verify_store",
]
