"""Campaigns: the pending comparisons of many artworks, fanned out on Dask distributed.

A museum re-photographs hundreds or thousands of works in a campaign; each
new scan is to be compared with the one before it. :func:`plan_campaign`
lists, for every artwork (or the ones asked for), each pair of consecutive
scans whose comparison is not stored yet; :func:`run_campaign` sends one Dask
task per pair to a cluster -- a :class:`distributed.LocalCluster` on this
machine by default, or an existing scheduler by address -- and collects a
:class:`CampaignSummary` (done / skipped / failed, and why).

Every task calls the library's one comparison path,
:func:`monitor.store.repository.compare_and_store`, on the worker: the
result goes into the shared database (``Settings.database_url``, PostgreSQL
for several machines) and the shared content store (``home``, a path every
worker mounts at the same place). Tasks are idempotent: a task looks its
request up by cache key first and reuses a stored result, and the database's
unique constraint on the key (with a row lock on the artwork) makes two
workers that compute the same pair at once store it once. So a task may be
run again safely: Dask reschedules the tasks of a worker that dies
(``distributed.scheduler.allowed-failures`` times) and retries a task that
raised (``retries``); bad input (a :class:`~monitor.errors.MonitorError`
such as "registration failed") is not retried but reported.

Examples
--------
>>> from monitor.campaign import CampaignTask, TaskOutcome, CampaignSummary
>>> t = CampaignTask("night-watch", 1, 2)
>>> s = CampaignSummary((TaskOutcome(t, "done", comparison_id=7, seconds=2.0),), 1, 60.0)
>>> s.counts
{'done': 1, 'skipped': 0, 'failed': 0}
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.results import RunFn, WriteFn

Status = Literal["done", "skipped", "failed"]
ProgressFn = Callable[[int, int, "TaskOutcome"], None]

#: Default number of times a task that raised is run again (worker loss is counted apart).
DEFAULT_RETRIES = 2

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class CampaignTask:
    """One pending comparison: two consecutive scans of an artwork (by id).

    ``cache_key`` is the request's key as planned (see
    :func:`monitor.store.repository.cache_key`); it names the Dask task, so
    submitting the same request twice runs it once.
    """

    slug: str
    baseline_scan_id: int
    current_scan_id: int
    cache_key: str = ""

    @property
    def label(self) -> str:
        """``slug:baseline->current``, for progress lines and logs."""
        return f"{self.slug}:{self.baseline_scan_id}->{self.current_scan_id}"


@dataclass(frozen=True)
class TaskOutcome:
    """What became of one :class:`CampaignTask`.

    ``status`` is ``done`` (computed and stored here), ``skipped`` (already
    stored, by an earlier run or by another worker at the same time; or
    nothing to compare) or ``failed`` (``reason`` says why).
    """

    task: CampaignTask
    status: Status
    comparison_id: int | None = None
    reason: str = ""
    seconds: float = 0.0
    worker: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        out = asdict(self)
        out["task"] = asdict(self.task)
        return out


@dataclass(frozen=True)
class CampaignSummary:
    """The outcome of a campaign: one :class:`TaskOutcome` per planned pair, and timing."""

    outcomes: tuple[TaskOutcome, ...]
    workers: int
    wall_s: float
    scheduler: str = "local"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def counts(self) -> dict[str, int]:
        """Number of outcomes per status (``done``, ``skipped``, ``failed``)."""
        counter = Counter(o.status for o in self.outcomes)
        return {status: counter.get(status, 0) for status in ("done", "skipped", "failed")}

    @property
    def comparisons_per_minute(self) -> float:
        """Comparisons computed (``done``) per minute of wall time."""
        return 60.0 * self.counts["done"] / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def failures(self) -> tuple[TaskOutcome, ...]:
        """The failed outcomes."""
        return tuple(o for o in self.outcomes if o.status == "failed")

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "counts": self.counts,
            "workers": self.workers,
            "scheduler": self.scheduler,
            "wall_s": self.wall_s,
            "comparisons_per_minute": self.comparisons_per_minute,
            "notes": list(self.notes),
            "outcomes": [o.to_dict() for o in self.outcomes],
        }


# --------------------------------------------------------------------------- planning


def plan_campaign(
    home: str | Path,
    settings: Settings | None = None,
    slugs: Sequence[str] | None = None,
) -> tuple[list[CampaignTask], list[TaskOutcome]]:
    """The comparisons a campaign must run: consecutive scans of each artwork not yet compared.

    For each artwork the scans are taken in capture order and every scan is
    paired with the one before it (the history ``monitor compare`` and the
    inbox build). A pair whose request (cache key) is already stored is
    reported as skipped, not planned.

    Parameters
    ----------
    home
        Data home (the shared content store).
    settings
        Settings of the comparisons (and ``database_url``); defaults when None.
    slugs
        Artworks to plan; None: every artwork.

    Returns
    -------
    tuple
        (tasks to run, outcomes of what is skipped: stored pairs, artworks
        with fewer than two scans).

    Examples
    --------
    >>> tasks, skipped = plan_campaign(home, settings)  # doctest: +SKIP
    >>> len(tasks), [s.reason for s in skipped][:1]  # doctest: +SKIP
    (40, ['already stored as comparison 3'])
    """
    from monitor.store import db, repository

    settings = settings or Settings()
    store = db.open_store(db.resolve_home(home, settings), settings)
    try:
        names = list(slugs) if slugs else [a.slug for a in repository.list_artworks(store)]
        tasks: list[CampaignTask] = []
        skipped: list[TaskOutcome] = []
        for slug in dict.fromkeys(names):  # keep order, drop repeats
            scans = repository.list_scans(store, slug)
            if len(scans) < 2:
                skipped.append(TaskOutcome(
                    CampaignTask(slug, scans[0].id if scans else 0, 0), "skipped",
                    reason=f"{len(scans)} scan(s): nothing to compare",
                ))
                continue
            for base, cur in zip(scans[:-1], scans[1:], strict=True):
                if base.sha256 == cur.sha256:
                    continue
                try:
                    light, _source, px_per_mm = repository.comparison_inputs(
                        base, cur, settings)
                except MonitorError as exc:  # e.g. recorded under two lamps: refused
                    skipped.append(TaskOutcome(CampaignTask(slug, base.id, cur.id), "skipped",
                                               reason=str(exc)))
                    continue
                key = repository.cache_key(base, cur, settings, light, px_per_mm)
                task = CampaignTask(slug, base.id, cur.id, key)
                existing = repository.find_comparison(store, key)
                if existing is None:
                    tasks.append(task)
                else:
                    skipped.append(TaskOutcome(task, "skipped", comparison_id=existing,
                                               reason=f"already stored as comparison {existing}"))
    finally:
        store.engine.dispose()
    return tasks, skipped


# --------------------------------------------------------------------------- the task


_STORES: dict[tuple[str, str], Any] = {}
_STORES_LOCK = threading.Lock()


def _worker_store(home: str, settings: Settings) -> Any:
    """One open store per worker process and (home, database), reused across tasks."""
    from monitor.store import db

    key = (home, settings.database_url)
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            store = db.open_store(Path(home), settings)
            _STORES[key] = store
        return store


def _transient(exc: MonitorError) -> bool:
    """A MonitorError caused by the database being busy or gone (worth running again)."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    cause = exc.__cause__
    return isinstance(cause, OperationalError) or (
        isinstance(cause, DBAPIError) and bool(cause.connection_invalidated)
    )


def compare_task(
    home: str,
    settings: Settings,
    task: CampaignTask,
    run: RunFn | None = None,
    write: WriteFn | None = None,
) -> TaskOutcome:
    """Run one campaign task on a worker: compare the pair and store it, or reuse the stored one.

    Idempotent: it may run twice (after a worker died, or from two
    campaigns) and stores the pair once.

    Parameters
    ----------
    home
        Data home, as every worker mounts it.
    settings
        Comparison settings and ``database_url``.
    task
        The pair.
    run, write
        The comparison and its artifact writer; default
        :func:`monitor.runners.pipeline_runner` and
        :func:`monitor.runners.write_comparison` (the CLI's and the inbox's).

    Returns
    -------
    TaskOutcome
        ``done`` or ``skipped`` (stored already), or ``failed`` for bad input.

    Raises
    ------
    Exception
        Anything but bad input (a database that is busy or gone, an OS
        error...), so that Dask runs the task again.

    Examples
    --------
    >>> compare_task("/mnt/monitor", settings, CampaignTask("w", 1, 2))  # doctest: +SKIP
    TaskOutcome(task=..., status='done', comparison_id=12, ...)
    """
    from monitor import runners
    from monitor.store import repository

    start = time.perf_counter()
    worker = f"{os.uname().nodename}:{os.getpid()}"
    try:
        store = _worker_store(home, settings)
        stored = repository.compare_and_store(
            store, task.slug, run or runners.pipeline_runner(settings),
            write or runners.write_comparison,
            settings=settings, baseline=str(task.baseline_scan_id),
            current=str(task.current_scan_id),
        )
    except MonitorError as exc:
        if _transient(exc):
            raise
        return TaskOutcome(task, "failed", reason=str(exc),
                           seconds=time.perf_counter() - start, worker=worker)
    status: Status = "skipped" if stored.reused else "done"
    reason = "stored already (by another worker or run)" if stored.reused else ""
    return TaskOutcome(task, status, comparison_id=stored.id, reason=reason,
                       seconds=time.perf_counter() - start, worker=worker)


# --------------------------------------------------------------------------- running


@contextmanager
def dask_client(
    workers: int = 2, scheduler: str | None = None, *, threads_per_worker: int = 1
) -> Iterator[Any]:
    """A :class:`distributed.Client`: on an existing scheduler, or on a new LocalCluster.

    Parameters
    ----------
    workers
        Worker processes of the LocalCluster (ignored with ``scheduler``).
    scheduler
        Address of a running scheduler (``tcp://host:8786``), or None.
    threads_per_worker
        Threads per local worker; 1 keeps one comparison per process (the
        pipeline parallelises inside a comparison through torch/OpenCV).

    Yields
    ------
    distributed.Client
        Closed (and the LocalCluster shut down) on exit.

    Examples
    --------
    >>> with dask_client(2) as client:  # doctest: +SKIP
    ...     print(len(client.scheduler_info()["workers"]))
    2
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise MonitorError(f"campaigns need dask distributed: {exc}") from exc
    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise MonitorError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
        try:
            yield client
        finally:
            client.close()
        return
    if workers < 1:
        raise MonitorError(f"workers must be at least 1, got {workers}")
    import dask

    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads_per_worker))}
    # A worker holds only the tasks it is running (saturation 1.0), not a queue of them:
    # comparisons are long, and when a worker dies only its running tasks count as suspects.
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
            host="127.0.0.1", dashboard_address="127.0.0.1:0",  # this machine only, free ports
            silence_logs=logging.ERROR, env=env,
        )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _describe(exc: BaseException) -> str:
    name = type(exc).__name__
    text = " ".join(str(exc).split())
    if name == "KilledWorker":
        return f"its worker died repeatedly ({text})"
    return f"{name}: {text}" if text else name


def run_campaign(
    home: str | Path,
    settings: Settings | None = None,
    slugs: Sequence[str] | None = None,
    *,
    workers: int = 2,
    scheduler: str | None = None,
    client: Any = None,
    retries: int = DEFAULT_RETRIES,
    run: RunFn | None = None,
    write: WriteFn | None = None,
    progress: ProgressFn | None = None,
) -> CampaignSummary:
    """Plan and run a campaign: every pending comparison as an idempotent Dask task.

    Parameters
    ----------
    home
        Data home: the shared content store, mounted at the same path on
        every worker.
    settings
        Comparison settings; ``database_url`` names the shared database
        (PostgreSQL when workers run on several machines).
    slugs
        Artworks; None: all.
    workers
        Worker processes of the LocalCluster started when neither
        ``scheduler`` nor ``client`` is given.
    scheduler
        Address of an existing Dask scheduler (its workers do the work).
    client
        An open :class:`distributed.Client` to use (not closed here).
    retries
        How many more times a task that raised runs (a worker's death is
        handled by the scheduler's ``allowed-failures``).
    run, write
        Comparison and artifact writer sent to the workers (picklable);
        defaults: the pipeline.
    progress
        Called as ``progress(finished, total, outcome)`` after each task.

    Returns
    -------
    CampaignSummary
        One outcome per planned pair (skipped ones included) and the timing.

    Examples
    --------
    >>> summary = run_campaign("/mnt/monitor", settings, workers=4)  # doctest: +SKIP
    >>> summary.counts
    {'done': 38, 'skipped': 2, 'failed': 0}
    """
    from monitor.store import db

    settings = settings or Settings()
    home_path = db.resolve_home(home, settings)
    start = time.perf_counter()
    tasks, skipped = plan_campaign(home_path, settings, slugs)
    outcomes: list[TaskOutcome] = list(skipped)
    total = len(tasks) + len(skipped)
    for i, outcome in enumerate(skipped, 1):
        if progress is not None:
            progress(i, total, outcome)
    label = scheduler or "local"
    if not tasks:
        return CampaignSummary(tuple(outcomes), 0 if client is None else _n_workers(client),
                               time.perf_counter() - start, label)
    if client is not None:
        results = _run_on(client, home_path, settings, tasks, retries, run, write, progress,
                          len(skipped), total)
        n = _n_workers(client)
    else:
        with dask_client(workers, scheduler) as own:
            results = _run_on(own, home_path, settings, tasks, retries, run, write, progress,
                              len(skipped), total)
            n = _n_workers(own)
    outcomes.extend(results)
    return CampaignSummary(tuple(outcomes), n, time.perf_counter() - start, label)


def _n_workers(client: Any) -> int:
    try:
        return len(client.scheduler_info().get("workers", {}))
    except Exception:  # noqa: BLE001 - only a figure for the summary
        return 0


def _run_on(
    client: Any,
    home: Path,
    settings: Settings,
    tasks: Sequence[CampaignTask],
    retries: int,
    run: RunFn | None,
    write: WriteFn | None,
    progress: ProgressFn | None,
    already: int,
    total: int,
) -> list[TaskOutcome]:
    from distributed import as_completed

    by_key: dict[Any, CampaignTask] = {}
    futures = []
    for task in tasks:
        # one task group ("monitor-compare"), so that the scheduler queues the tasks and
        # hands each worker one at a time (worker-saturation); named by the request
        key = ("monitor-compare", f"{task.label}:{task.cache_key[:16]}")
        by_key[key] = task
        futures.append(client.submit(compare_task, str(home), settings, task, run, write,
                                     key=key, retries=retries, pure=False))
    outcomes: list[TaskOutcome] = []
    finished = already
    for future in as_completed(futures):
        task = by_key[future.key]
        if future.status == "finished":
            outcome = future.result()
        else:
            try:
                exc = future.exception()
            except Exception as err:  # noqa: BLE001 - a cancelled future raises here
                exc = err
            outcome = TaskOutcome(task, "failed", reason=_describe(exc))
        outcomes.append(outcome)
        finished += 1
        if progress is not None:
            progress(finished, total, outcome)
        future.release()
    order = {t.label: i for i, t in enumerate(tasks)}
    outcomes.sort(key=lambda o: order.get(o.task.label, len(order)))
    return outcomes
