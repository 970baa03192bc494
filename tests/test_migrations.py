"""Alembic migrations: empty upgrade, models in step with migrations, round trips keep data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine
from test_store import fake_write, make_comparison, write_image

from monitor.errors import MonitorError
from monitor.store import db, repository
from monitor.store.models import Base

TABLES = ["alembic_version", "artwork", "comparison", "region", "scan"]


def _revisions() -> list[str]:
    cfg = Config()
    cfg.set_main_option("script_location", str(db.migrations_dir()))
    script = ScriptDirectory.from_config(cfg)
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def _dump(engine: Engine) -> dict[str, list[dict[str, object]]]:
    out = {}
    with engine.connect() as conn:
        for table in TABLES[1:]:
            rows = conn.execute(text(f"SELECT * FROM {table} ORDER BY id")).mappings()
            out[table] = [dict(r) for r in rows]
    return out


def _kept(before: dict[str, list[dict[str, object]]],
          after: dict[str, list[dict[str, object]]]) -> dict[str, list[dict[str, object]]]:
    """``before`` restricted to the columns ``after`` still has (a downgrade may drop some)."""
    return {
        table: [{k: row[k] for k in (after[table][0] if after[table] else row)} for row in rows]
        for table, rows in before.items()
    }


def test_upgrade_on_empty_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
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


def test_every_revision_steps_up_and_down(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'steps.db'}"
    revisions = _revisions()
    assert len(revisions) >= 2
    for rev in revisions:
        assert db.upgrade(url, "+1") == rev
    for rev in reversed([None, *revisions[:-1]]):
        assert db.downgrade(url, "-1") == rev
    engine = db.make_engine(url)
    assert db.table_names(engine) == ["alembic_version"]
    engine.dispose()


def test_downgrade_and_upgrade_keep_a_populated_database(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = db.init_home(home)
    repository.add_artwork(store, "w", "Work <b>", artist="A. Painter", width_mm=10.0)
    for i, month in enumerate((1, 7)):
        repository.ingest_scan(
            store,
            "w",
            write_image(tmp_path / f"{i}.png", i),
            repository.ScanMeta(captured_at=datetime(2024, month, 1, tzinfo=UTC), px_per_mm=4.0),
        )
    stored = repository.compare_and_store(store, "w", lambda *a: make_comparison(), fake_write)
    before_rows = _dump(store.engine)
    before_detail = repository.comparison_detail(store, stored.id)
    before_history = repository.history(store, "w")
    url = db.database_url(home)

    previous = _revisions()[-2]
    assert db.downgrade(url, "-1") == previous
    after_down = _dump(store.engine)
    assert after_down == _kept(before_rows, after_down)
    with pytest.raises(MonitorError, match="monitor db upgrade"):
        db.open_store(home)

    assert db.upgrade(url) == db.head_revision()
    reopened = db.open_store(home)
    assert _dump(reopened.engine) == before_rows
    assert repository.comparison_detail(reopened, stored.id) == before_detail
    assert repository.history(reopened, "w") == before_history
    assert all(p.is_file() for p in before_detail.artifacts.values())
    reopened.engine.dispose()
    store.engine.dispose()


def test_unknown_revision_is_a_monitor_error(tmp_path: Path) -> None:
    with pytest.raises(MonitorError, match="upgrade"):
        db.upgrade(f"sqlite:///{tmp_path / 'x.db'}", "nonexistent")
