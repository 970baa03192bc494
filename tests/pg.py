"""A throwaway PostgreSQL server for the test session, and a ``db_url`` fixture over both backends.

The server is started once per session, on demand (only when a test asks
for the PostgreSQL half of ``db_url``):

- ``MONITOR_TEST_POSTGRES_URL`` set: that server is used (a URL whose user may
  ``CREATE DATABASE``, e.g. ``postgresql+psycopg://me@db.example/postgres``);
- else the binaries of a local PostgreSQL installation are looked up
  (``MONITOR_TEST_PG_BIN``, ``pg_config --bindir``, Debian's
  ``/usr/lib/postgresql/<n>/bin``, ``PATH``) and a cluster is made with
  ``initdb`` in a temporary folder, started with ``pg_ctl`` on a free port of
  127.0.0.1 (trust authentication, no fsync: it is thrown away), and stopped
  and deleted at the end. PostgreSQL refuses to run as root, so as root the
  cluster belongs to the ``postgres`` user (Debian's package creates it) or
  ``nobody``, and the commands run as that user.

When no server binary can be found the PostgreSQL half *skips* with the
reason (``make test`` installs Debian's ``postgresql`` package first). With
``MONITOR_REQUIRE_POSTGRES=1`` (``make test`` sets it once the package is
there) a missing server fails instead, so CI cannot pass silently without it.
A server that is found but does not start is always an error.

Each PostgreSQL test gets its own database (``CREATE DATABASE``), dropped
afterwards; each SQLite test its own file (``db_url``) or the data home's
embedded ``monitor.db`` (``db_settings``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BACKENDS = ("sqlite", "postgresql")


@dataclass(frozen=True)
class PgServer:
    """A PostgreSQL server tests may create databases on."""

    #: URL of the maintenance database (``.../postgres``) with a CREATEDB user.
    admin_url: str

    def url_for(self, database: str) -> str:
        """URL of another database on the same server."""
        from sqlalchemy.engine import make_url

        return make_url(self.admin_url).set(database=database).render_as_string(
            hide_password=False
        )

    def _admin(self) -> object:
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(self.admin_url)
        return psycopg.connect(
            host=url.host, port=url.port, user=url.username, password=url.password,
            dbname=url.database or "postgres", autocommit=True, connect_timeout=10,
        )

    def create_database(self) -> str:
        """Create an empty database; returns its URL."""
        name = f"monitor_test_{uuid.uuid4().hex[:16]}"
        with self._admin() as conn:  # type: ignore[attr-defined]
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by :meth:`create_database` (closing its connections)."""
        from sqlalchemy.engine import make_url

        name = make_url(url).database
        with self._admin() as conn:  # type: ignore[attr-defined]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def find_pg_bin() -> Path | None:
    """Folder holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed."""
    candidates: list[Path] = []
    if os.environ.get("MONITOR_TEST_PG_BIN"):
        candidates.append(Path(os.environ["MONITOR_TEST_PG_BIN"]))
    if shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                 check=True, timeout=10).stdout.strip()
            candidates.append(Path(out))
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = sorted((p for p in debian.iterdir() if p.name.isdigit()),
                          key=lambda p: int(p.name), reverse=True)
        candidates.extend(p / "bin" for p in versions)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as when we are root, else None."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and there is no 'postgres' or 'nobody' user for the "
                       "PostgreSQL test server")


class LocalCluster:
    """A PostgreSQL cluster in a temporary folder, run by ``pg_ctl``."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.user = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="monitor-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self.started = False
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        os.chmod(self.root, 0o700)

    def _cmd(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self.user is not None:
            kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        env = {**os.environ, "LC_ALL": "C", "HOME": str(self.root)}
        return subprocess.run(  # type: ignore[call-overload,no-any-return]
            [str(self.bindir / args[0]), *args[1:]], capture_output=True, text=True,
            timeout=timeout, cwd=self.root, env=env, **kwargs,
        )

    def start(self) -> str:
        """initdb + pg_ctl start; returns the admin URL."""
        init = self._cmd("initdb", "-D", str(self.data), "-U", "monitor", "-A", "trust",
                         "-E", "UTF8", "--no-sync", "--locale=C")
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
        last = ""
        for _attempt in range(5):
            self.port = _free_port()
            options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                       f"-c unix_socket_directories={self.root} -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off "
                       "-c max_connections=200")
            started = self._cmd("pg_ctl", "-D", str(self.data), "-l", str(self.log),
                                "-o", options, "-w", "-t", "60", "start")
            if started.returncode == 0:
                self.started = True
                atexit.register(self.stop)
                return f"postgresql+psycopg://monitor@127.0.0.1:{self.port}/postgres"
            last = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            last = last or started.stderr
        raise RuntimeError(f"pg_ctl could not start the test server: {last.strip()}")

    def stop(self) -> None:
        """Stop the server and delete its folder (idempotent)."""
        if self.started:
            self._cmd("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60)
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)


def _require() -> bool:
    return os.environ.get("MONITOR_REQUIRE_POSTGRES", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server for this session (started here unless one is given), or skip."""
    given = os.environ.get("MONITOR_TEST_POSTGRES_URL", "").strip()
    if given:
        yield PgServer(given)
        return
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        reason = f"PostgreSQL tests need the psycopg driver ({exc}); pip install 'psycopg[binary]'"
        if _require():
            pytest.fail(reason)
        pytest.skip(reason)
    bindir = find_pg_bin()
    if bindir is None:
        reason = ("no PostgreSQL server installed (initdb/pg_ctl not found): `make test` "
                  "installs Debian's postgresql package as root; or set "
                  "MONITOR_TEST_POSTGRES_URL to a server")
        if _require():
            pytest.fail(reason)
        pytest.skip(reason)
    cluster = LocalCluster(bindir)
    try:
        admin = cluster.start()
    except BaseException:
        cluster.stop()
        raise
    try:
        yield PgServer(admin)
    finally:
        cluster.stop()


@pytest.fixture(params=BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    """Name of the database backend a test runs against: ``sqlite`` or ``postgresql``."""
    return str(request.param)


@pytest.fixture()
def db_url(db_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database of the test's backend (SQLite file or a new PostgreSQL db)."""
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'monitor-test.db'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    url = server.create_database()
    try:
        yield url
    finally:
        # engines the test forgot to dispose hold connections: FORCE closes them
        for _ in range(3):
            try:
                server.drop_database(url)
                break
            except Exception:  # noqa: BLE001 - best effort cleanup of a throwaway db
                time.sleep(0.5)


@pytest.fixture()
def db_settings(db_backend: str, request: pytest.FixtureRequest,
                monkeypatch: pytest.MonkeyPatch) -> object:
    """:class:`monitor.config.Settings` for the test's backend.

    SQLite: the defaults, i.e. the embedded ``monitor.db`` in the data home,
    exactly what a user gets. PostgreSQL: ``database_url`` names a new
    database, and ``MONITOR_DATABASE_URL`` is set too, so that commands which
    load their own settings (the CLI, the inbox, subprocesses and Dask
    workers started from this process) use it.
    """
    from monitor.config import Settings

    if db_backend == "sqlite":
        monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
        return Settings()
    url = str(request.getfixturevalue("db_url"))
    monkeypatch.setenv("MONITOR_DATABASE_URL", url)
    return Settings(database_url=url)
