"""Scheduled re-scan comparisons: one pass over an inbox of new scans, safe to run from a timer.

A lab drops scans into ``INBOX/<artwork-slug>/<name>.<tif|png|jpg>``, each
with an optional sidecar ``<name-without-suffix>.json`` or ``.toml`` (keys of
:class:`monitor.store.repository.ScanMeta`). One pass (:func:`run_inbox`):

1. takes an exclusive lock on ``<home>/inbox.lock`` (``filelock``: flock / msvcrt),
   so two passes over the same data home never overlap;
2. finds the files that settled (unchanged for ``Settings.inbox_settle_s``);
3. ingests each into the store (:func:`monitor.store.repository.ingest_scan`;
   capture time from the sidecar, else EXIF, else the file's modification
   time);
4. per artwork, in capture order, compares each new scan against the scan
   before it (:func:`monitor.store.repository.compare_and_store`, the same
   call as ``monitor compare SLUG``), writes the PDF report
   (:func:`monitor.report.render.write_report`) and runs the alert hook;
5. moves the file (and its sidecar) to ``INBOX/_processed/<slug>/``.

A scan that cannot be used (unreadable, unknown artwork, bad sidecar, or a
different painting: the registration refuses it) goes to
``INBOX/_quarantine/<slug>/`` with a ``<name>.reason.txt``; a scan this inbox
added to the store is taken out again. Anything else that goes wrong (a bug,
a full disk) leaves the file where it is for the next pass.

Crash safety: every step is idempotent (a scan is unique per artwork and
image hash, a comparison per cache key, a report is written under a name
fixed by the comparison id and renamed into place, moves go to names fixed
by the image hash), and the store's own writes are atomic. Before a pass
adds a scan it leaves a marker in ``<home>/inbox-pending/``; the marker says
"this scan came from the inbox and is not accepted yet", so after a kill the
next pass still knows it may take that scan back. The next pass simply
repeats the steps of the files still in the inbox and finds the work done.
"""

from __future__ import annotations

from monitor.inbox.alerts import (  # noqa: F401
    ALERT_COMMAND_TIMEOUT_S,
    ALERT_URL_TIMEOUT_S,
    alert_payload,
    send_alert,
)
from monitor.inbox.discovery import (  # noqa: F401
    JUNK_NAMES,
    PARTIAL_SUFFIXES,
    PENDING_DIR,
    PROCESSED_DIR,
    QUARANTINE_DIR,
    REASON_SUFFIX,
    SIDECAR_SUFFIXES,
    discover,
    resolve_paths,
)
from monitor.inbox.filing import (  # noqa: F401
    move_out,
)
from monitor.inbox.lock import (  # noqa: F401
    LOCK_NAME,
    inbox_lock,
)
from monitor.inbox.process import (  # noqa: F401
    STALE_TEMP_S,
    plan_inbox,
    process_inbox,
    run_inbox,
)
from monitor.inbox.records import (  # noqa: F401
    BAD_OUTCOMES,
    EXIT_BUSY,
    EXIT_DONE,
    EXIT_ERROR,
    EXIT_NOTHING,
    EXIT_SOME_FAILED,
    OK_OUTCOMES,
    InboxFile,
    ItemResult,
    Progress,
    RunSummary,
)
from monitor.inbox.schedule import (  # noqa: F401
    Schedule,
    config_in_use,
    monitor_executable,
    parse_every,
    schedule_files,
)
from monitor.inbox.sidecars import (  # noqa: F401
    read_sidecar,
)

__all__ = [
]
