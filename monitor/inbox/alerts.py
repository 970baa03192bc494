"""Alerts after a pass: the payload, a command and a URL."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monitor.config import Settings
from monitor.store import repository

ALERT_COMMAND_TIMEOUT_S = 60.0


ALERT_URL_TIMEOUT_S = 10.0


def alert_payload(
    detail: repository.ComparisonDetail, report: Path | None, threshold: float
) -> dict[str, Any]:
    """The JSON an alert hook receives.

    Parameters
    ----------
    detail
        The stored comparison.
    report
        The PDF written for it.
    threshold
        ``Settings.alert_min_significance``.

    Returns
    -------
    dict
        Artwork, scans, comparison id, report path, the regions at or above
        the threshold and the largest significance.
    """
    hits = [r for r in detail.regions if r.significance >= threshold]
    return {
        "event": "monitor.significant_change",
        "artwork": detail.artwork.slug,
        "title": detail.artwork.title,
        "comparison_id": detail.id,
        "baseline_scan": detail.baseline.id,
        "current_scan": detail.current.id,
        "current_captured_at": detail.current.captured_at.isoformat(),
        "report": None if report is None else str(report),
        "threshold": threshold,
        "max_significance": max((r.significance for r in detail.regions), default=0.0),
        "regions": [r.to_dict() for r in hits],
    }


def send_alert(payload: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """Run the alert command and/or POST to the alert URL; never raises.

    The command (``Settings.alert_command``, split like a shell command line
    but run without a shell) gets the JSON on stdin and ``MONITOR_ALERT_*``
    environment variables (ARTWORK, COMPARISON_ID, REPORT, MAX_SIGNIFICANCE,
    REGIONS). The URL (``Settings.alert_url``, http or https) gets the JSON
    by POST.

    Parameters
    ----------
    payload
        From :func:`alert_payload`.
    settings
        Where to send it.

    Returns
    -------
    dict
        ``{"command": {...}, "url": {...}}`` with a return code / HTTP status
        or an ``error`` for each hook that is configured.
    """
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    out: dict[str, Any] = {}
    if settings.alert_command.strip():
        env = dict(os.environ)
        env.update(
            MONITOR_ALERT_ARTWORK=str(payload.get("artwork", "")),
            MONITOR_ALERT_COMPARISON_ID=str(payload.get("comparison_id", "")),
            MONITOR_ALERT_REPORT=str(payload.get("report") or ""),
            MONITOR_ALERT_MAX_SIGNIFICANCE=str(payload.get("max_significance", "")),
            MONITOR_ALERT_REGIONS=str(len(payload.get("regions", []))),
        )
        try:
            argv = shlex.split(settings.alert_command)
            done = subprocess.run(  # noqa: S603 - argv from the operator's own settings, no shell
                argv, input=body, env=env, capture_output=True,
                timeout=ALERT_COMMAND_TIMEOUT_S, check=False,
            )
            out["command"] = {"returncode": done.returncode}
            if done.returncode != 0:
                tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
                out["command"]["error"] = tail[0] if tail else f"exit status {done.returncode}"
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            out["command"] = {"error": " ".join(str(exc).split())}
    if settings.alert_url.strip():
        url = settings.alert_url.strip()
        try:
            if not url.lower().startswith(("http://", "https://")):
                raise ValueError(f"alert_url must be http(s), got {url!r}")
            request = urllib.request.Request(
                url, data=body, method="POST",
                headers={"Content-Type": "application/json", "User-Agent": "monitor"},
            )
            with urllib.request.urlopen(request, timeout=ALERT_URL_TIMEOUT_S) as response:  # noqa: S310
                out["url"] = {"status": int(response.status)}
        except (OSError, ValueError, urllib.error.URLError) as exc:
            out["url"] = {"error": " ".join(str(exc).split())}
    return out
