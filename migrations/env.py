"""Alembic environment of the monitor store.

Run programmatically by :mod:`monitor.store.db` (which hands over an open
connection in ``config.attributes["connection"]``), or from the command line
with the top-level ``alembic.ini`` (the URL then comes from ``-x url=...``,
``sqlalchemy.url`` or the monitor settings: ``MONITOR_DATABASE_URL`` /
``MONITOR_HOME``).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from monitor.store.models import Base

config = context.config
if config.config_file_name is not None:  # the alembic command line, not the application
    fileConfig(config.config_file_name)
target_metadata = Base.metadata


def _url() -> str:
    from monitor.config import load_settings
    from monitor.store.db import database_url, resolve_home

    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if url:
        return url
    settings = load_settings()
    return database_url(resolve_home(None, settings), settings)


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from monitor.store.db import make_engine

    engine = make_engine(_url(), foreign_keys=False)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: future migrations rebuild tables there.
        render_as_batch=connection.dialect.name == "sqlite",  # type: ignore[attr-defined]
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
