"""Data home, database engine and Alembic migrations run from the package.

The data home (``--home``, env ``MONITOR_HOME``, default
``~/.local/share/monitor``, see :class:`monitor.config.Settings`) holds::

    monitor.db          the SQLite database (unless database_url points elsewhere)
    objects/ab/abcd...  content-addressed files: scans and comparison artifacts
    tmp/                staging area; files are renamed from here into objects/

The database URL is ``Settings.database_url`` (env ``MONITOR_DATABASE_URL``)
or ``sqlite:///<home>/monitor.db``. The schema comes only from the Alembic
migrations in the repository's top-level ``migrations/`` folder; an installed
(non-editable) package finds them through ``MONITOR_MIGRATIONS`` (see
:func:`migrations_dir`).

SQLite-specific code is marked as such: enabling foreign keys, making the
pysqlite driver transactional (so that DDL and DML share one real
transaction), ``BEGIN IMMEDIATE`` and a busy timeout. Every SQLite
transaction starts with ``BEGIN IMMEDIATE``: it takes the database's write
lock at once, so two writers queue (for up to the busy timeout,
``Settings.busy_timeout_s``) instead of one failing with "database is
locked" when both try to turn a read into a write. The write lock is also
what guards the object store: an object is put into place, and removed,
only by a transaction that holds it (see :func:`write_lock` and
:mod:`monitor.store.repository`). Other backends take an advisory lock
instead (PostgreSQL) or rely on their own locking.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from monitor.config import Settings, load_settings
from monitor.errors import MonitorError

DB_FILENAME = "monitor.db"
DEFAULT_BUSY_TIMEOUT_S = 30.0
#: Key of the PostgreSQL advisory lock that serialises writers (any fixed 64-bit number).
_PG_WRITE_LOCK_KEY = 0x6D6F6E69746F72
OBJECTS_DIRNAME = "objects"
TMP_DIRNAME = "tmp"
_REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Store:
    """An open data home: its folder and the engine of its database."""

    home: Path
    engine: Engine

    @property
    def objects_dir(self) -> Path:
        """Folder of the content-addressed files."""
        return self.home / OBJECTS_DIRNAME

    @property
    def tmp_dir(self) -> Path:
        """Staging folder on the same file system as ``objects_dir``."""
        return self.home / TMP_DIRNAME


def resolve_home(home: str | Path | None = None, settings: Settings | None = None) -> Path:
    """Absolute data home: ``home`` if given, else ``settings.home`` (env ``MONITOR_HOME``).

    Parameters
    ----------
    home
        Explicit data home (the CLI's ``--home``), or None.
    settings
        Settings to fall back on; :func:`monitor.config.load_settings` when None.

    Returns
    -------
    Path
        Absolute, user-expanded path (not necessarily existing).
    """
    if home is None or str(home) == "":
        settings = settings if settings is not None else load_settings()
        home = settings.home
    return Path(home).expanduser().absolute()


def database_url(home: Path, settings: Settings | None = None) -> str:
    """URL of the store's database: ``settings.database_url`` or SQLite in ``home``.

    Parameters
    ----------
    home
        Absolute data home.
    settings
        Settings that may name another database; defaults are used when None.

    Returns
    -------
    str
        A SQLAlchemy database URL.
    """
    url = (settings.database_url if settings is not None else "").strip()
    return url or f"sqlite:///{home / DB_FILENAME}"


def make_engine(
    url: str, *, foreign_keys: bool = True, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S
) -> Engine:
    """Create an engine for ``url``.

    Parameters
    ----------
    url
        SQLAlchemy database URL.
    foreign_keys
        SQLite only: enforce foreign keys (``PRAGMA foreign_keys``). Migrations
        switch it off because SQLite's table rebuilds would otherwise fire
        ``ON DELETE CASCADE``; other backends ignore this flag.
    busy_timeout_s
        SQLite only: how long a connection waits for another one's write lock
        (``PRAGMA busy_timeout``, set on every connection).

    Returns
    -------
    Engine
        The engine; SQLite engines are made transactional for DDL too and
        start every transaction with ``BEGIN IMMEDIATE``.

    Examples
    --------
    >>> engine = make_engine("sqlite://", busy_timeout_s=5)
    >>> with engine.connect() as c:
    ...     c.exec_driver_sql("PRAGMA busy_timeout").scalar()
    5000
    """
    if not math.isfinite(busy_timeout_s) or busy_timeout_s < 0:
        raise MonitorError(f"busy timeout must be a non-negative number, got {busy_timeout_s}")
    try:
        if url.startswith("sqlite"):
            engine = create_engine(
                url, connect_args={"timeout": busy_timeout_s}, poolclass=NullPool
            )
            _make_sqlite_transactional(engine, foreign_keys, busy_timeout_s)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise MonitorError(f"cannot open database {_safe_url(url)}: {exc}") from exc
    return engine


def _safe_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError):
        return "<unparsable url>"


def _make_sqlite_transactional(engine: Engine, foreign_keys: bool, busy_timeout_s: float) -> None:
    """SQLite only: SQLAlchemy's documented recipe for real transactions with pysqlite.

    ``BEGIN IMMEDIATE`` (not a deferred ``BEGIN``): a deferred transaction
    that reads and then writes fails at once with "database is locked" when
    another connection wrote in between (SQLite cannot wait there without a
    deadlock); an immediate one waits for the lock at its start instead.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def write_lock(connection: Connection) -> None:
    """Hold the store's write lock until the current transaction ends.

    SQLite: already held (every transaction begins ``BEGIN IMMEDIATE``).
    PostgreSQL: a transaction-scoped advisory lock. Other backends: nothing
    (their row locks and unique constraints are all there is).

    Parameters
    ----------
    connection
        Connection inside a transaction (e.g. ``session.connection()``).

    Examples
    --------
    >>> engine = make_engine("sqlite://")
    >>> with engine.begin() as c:
    ...     write_lock(c)
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_WRITE_LOCK_KEY})


def migrations_dir() -> Path:
    """Folder of the Alembic environment (``env.py``, ``versions/``).

    Looked up as ``$MONITOR_MIGRATIONS`` if set, else the repository's
    top-level ``migrations/`` next to the ``monitor`` package (a source
    checkout or an editable install).

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    MonitorError
        When neither exists (e.g. a wheel install without ``MONITOR_MIGRATIONS``).
    """
    candidates: list[Path] = []
    if os.environ.get("MONITOR_MIGRATIONS"):
        candidates.append(Path(os.environ["MONITOR_MIGRATIONS"]).expanduser())
    candidates.append(_REPO_ROOT / "migrations")
    for candidate in candidates:
        if (candidate / "env.py").is_file():
            return candidate
    raise MonitorError(
        "cannot find the Alembic migrations folder; set MONITOR_MIGRATIONS to the "
        "'migrations' folder of the monitor source tree"
    )


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return cfg


def head_revision() -> str:
    """Newest migration revision the code knows.

    Returns
    -------
    str
        The head revision id.
    """
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise MonitorError("the migrations folder holds no revision")
    return head


def current_revision(engine: Engine) -> str | None:
    """Revision the database is at, None for an empty (never migrated) database.

    Parameters
    ----------
    engine
        Engine of the database.

    Returns
    -------
    str or None
        The revision id.
    """
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise MonitorError(f"cannot read the database revision: {exc}") from exc


def _busy(settings: Settings | None) -> float:
    return settings.busy_timeout_s if settings is not None else DEFAULT_BUSY_TIMEOUT_S


def _run_alembic(url: str, action: str, revision: str) -> str | None:
    engine = make_engine(url, foreign_keys=False, busy_timeout_s=DEFAULT_BUSY_TIMEOUT_S)
    try:
        cfg = _alembic_config()
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            if action == "upgrade":
                command.upgrade(cfg, revision)
            else:
                command.downgrade(cfg, revision)
            if connection.dialect.name == "sqlite":  # SQLite only: FKs were off while migrating
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise MonitorError(
                        f"migration {action} {revision} left {len(broken)} broken foreign key(s)"
                    )
        return current_revision(engine)
    except SQLAlchemyError as exc:
        raise MonitorError(f"database {action} to {revision} failed: {exc}") from exc
    except Exception as exc:  # alembic raises its own types (CommandError, KeyError...)
        if isinstance(exc, MonitorError):
            raise
        raise MonitorError(f"database {action} to {revision} failed: {exc}") from exc
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> str | None:
    """Migrate the database at ``url`` up to ``revision`` in one transaction.

    Parameters
    ----------
    url
        SQLAlchemy database URL.
    revision
        Target revision (``head``, an id, or ``+1``).

    Returns
    -------
    str or None
        The revision the database is at afterwards.
    """
    return _run_alembic(url, "upgrade", revision)


def downgrade(url: str, revision: str) -> str | None:
    """Migrate the database at ``url`` down to ``revision`` (``-1``, an id or ``base``).

    Parameters
    ----------
    url
        SQLAlchemy database URL.
    revision
        Target revision.

    Returns
    -------
    str or None
        The revision the database is at afterwards (None at base).
    """
    return _run_alembic(url, "downgrade", revision)


def init_home(home: Path, settings: Settings | None = None) -> Store:
    """Create the data home's folders and migrate its database to head.

    Parameters
    ----------
    home
        Absolute data home; created when missing.
    settings
        Settings (for ``database_url``); defaults when None.

    Returns
    -------
    Store
        The open store.
    """
    try:
        for sub in (home, home / OBJECTS_DIRNAME, home / TMP_DIRNAME):
            sub.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MonitorError(f"cannot create data home {home}: {exc}") from exc
    url = database_url(home, settings)
    upgrade(url, "head")
    return Store(home=home, engine=make_engine(url, busy_timeout_s=_busy(settings)))


def open_store(home: Path, settings: Settings | None = None) -> Store:
    """Open an initialised data home whose database is at the head revision.

    Parameters
    ----------
    home
        Absolute data home.
    settings
        Settings (for ``database_url``); defaults when None.

    Returns
    -------
    Store
        The open store.

    Raises
    ------
    MonitorError
        When the home or its database is missing or not migrated to head.
    """
    url = database_url(home, settings)
    if not (home / OBJECTS_DIRNAME).is_dir():
        raise MonitorError(f"no data home at {home}; run 'monitor init --home {home}' first")
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise MonitorError(f"no database at {url}; run 'monitor init --home {home}' first")
    engine = make_engine(url, busy_timeout_s=_busy(settings))
    have = current_revision(engine)
    want = head_revision()
    if have != want:
        engine.dispose()
        raise MonitorError(
            f"database is at revision {have or 'empty'}, this version needs {want}; "
            "run 'monitor db upgrade'"
        )
    return Store(home=home, engine=engine)


def table_names(engine: Engine) -> list[str]:
    """Names of the tables in the database (for checks and tests).

    Parameters
    ----------
    engine
        Engine of the database.

    Returns
    -------
    list of str
        Sorted table names.
    """
    with engine.connect() as connection:
        return sorted(inspect(connection).get_table_names())

