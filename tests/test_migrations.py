"""Alembic migrations: empty upgrade, models in step with migrations, round trips keep data."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine
from test_store import make_comparison, write_image

from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.pipeline import write_outputs
from monitor.store import db, repository
from monitor.store.models import Base

TABLES = [
    "alembic_version", "appearance_region", "artwork", "comparison", "region", "scan",
    "scan_image",
]


def _revisions() -> list[str]:
    cfg = Config()
    cfg.set_main_option("script_location", str(db.migrations_dir()))
    script = ScriptDirectory.from_config(cfg)
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def _dump(engine: Engine) -> dict[str, list[dict[str, object]]]:
    out = {}
    present = set(db.table_names(engine))
    with engine.connect() as conn:
        for table in TABLES[1:]:
            if table not in present:  # a downgrade drops the tables later revisions added
                continue
            rows = conn.execute(text(f"SELECT * FROM {table} ORDER BY id")).mappings()
            out[table] = [dict(r) for r in rows]
    return out


def _common(a: dict[str, list[dict[str, object]]], b: dict[str, list[dict[str, object]]]
            ) -> tuple[dict[str, list[dict[str, object]]], dict[str, list[dict[str, object]]]]:
    """Both dumps restricted to the columns both have (a downgrade drops new ones)."""
    out_a, out_b = {}, {}
    for table in a:
        keys = set(a[table][0]) & set(b[table][0]) if a[table] and b[table] else set()
        out_a[table] = [{k: r[k] for k in keys} for r in a[table]]
        out_b[table] = [{k: r[k] for k in keys} for r in b[table]]
    return out_a, out_b


def test_upgrade_on_empty_database(db_url: str) -> None:
    url = db_url
    engine = db.make_engine(url)
    assert db.current_revision(engine) is None
    assert db.upgrade(url) == db.head_revision()
    assert db.table_names(engine) == TABLES
    # the models describe exactly what the migrations built
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []
    engine.dispose()


def test_every_revision_steps_up_and_down(db_url: str) -> None:
    url = db_url
    revisions = _revisions()
    assert len(revisions) >= 2
    for rev in revisions:
        assert db.upgrade(url, "+1") == rev
    for rev in reversed([None, *revisions[:-1]]):
        assert db.downgrade(url, "-1") == rev
    engine = db.make_engine(url)
    assert db.table_names(engine) == ["alembic_version"]
    engine.dispose()


def test_downgrade_and_upgrade_keep_a_populated_database(
    tmp_path: Path, db_settings: Settings
) -> None:
    home = tmp_path / "home"
    store = db.init_home(home, db_settings)
    repository.add_artwork(store, "w", "Work <b>", artist="A. Painter", width_mm=10.0)
    for i, month in enumerate((1, 7)):
        repository.ingest_scan(
            store,
            "w",
            write_image(tmp_path / f"{i}.png", i),
            repository.ScanMeta(captured_at=datetime(2024, month, 1, tzinfo=UTC), px_per_mm=4.0),
        )
    stored = repository.compare_and_store(store, "w", lambda *a: make_comparison(), write_outputs)
    before_rows = _dump(store.engine)
    before_detail = repository.comparison_detail(store, stored.id)
    before_history = repository.history(store, "w")
    url = db.database_url(home, db_settings)

    previous = _revisions()[-2]
    assert db.downgrade(url, "-1") == previous
    down, kept = _common(_dump(store.engine), before_rows)
    assert down == kept  # every column the older schema has keeps its data
    with pytest.raises(MonitorError, match="monitor db upgrade"):
        db.open_store(home, db_settings)

    assert db.upgrade(url) == db.head_revision()
    reopened = db.open_store(home, db_settings)
    assert _dump(reopened.engine) == before_rows
    assert repository.comparison_detail(reopened, stored.id) == before_detail
    reopened.engine.dispose()

    # 0003 adds the light's source: back below it and up again, the upgrade
    # backfills what the old schema used (no scan light recorded here: the default)
    db.downgrade(url, "0002")
    assert db.upgrade(url) == db.head_revision()
    reopened = db.open_store(home, db_settings)
    after = _dump(reopened.engine)
    assert [r["light_source"] for r in after["comparison"]] == ["default"]
    assert [r["light_disagrees"] for r in after["comparison"]] == [None]
    for rows in (after["comparison"], before_rows["comparison"]):
        for r in rows:
            for k in ("light_source", "light_uncertainty", "light_disagrees",
                      "light_message", "light_evidence"):
                r.pop(k, None)
    for table in ("appearance_region", "scan_image"):  # 0004 / 0005 rows: none here
        assert after.get(table, []) == before_rows.get(table, []) == []
    assert after == before_rows
    assert repository.comparison_detail(reopened, stored.id) == replace(
        before_detail, light_source="default", light_message=None
    )
    assert repository.history(reopened, "w") == before_history
    assert all(p.is_file() for p in before_detail.artifacts.values())
    reopened.engine.dispose()
    store.engine.dispose()


def test_unknown_revision_is_a_monitor_error(db_url: str) -> None:
    with pytest.raises(MonitorError, match="upgrade"):
        db.upgrade(db_url, "nonexistent")
