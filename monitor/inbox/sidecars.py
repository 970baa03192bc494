"""Sidecar files (.json / .toml) beside a scan: its capture metadata."""

from __future__ import annotations

import json
import tomllib
from dataclasses import fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from monitor.errors import MonitorError
from monitor.store import repository
from monitor.store.repository import ScanMeta

_TEXT_KEYS = ("camera", "operator", "notes")


_NUMBER_KEYS = ("px_per_mm", "light_azimuth", "light_elevation")


def read_sidecar(path: Path) -> ScanMeta:
    """Read a scan's sidecar (JSON or TOML) into :class:`ScanMeta`.

    Keys (all optional): ``captured_at`` (ISO 8601 text, or a TOML date /
    date-time; naive = UTC), ``px_per_mm``, ``light_azimuth``,
    ``light_elevation`` (numbers; see :class:`monitor.results.Light`),
    ``camera``, ``operator``, ``notes`` (text). Any other key is an error, so
    that a typo does not pass silently.

    Parameters
    ----------
    path
        The ``.json`` or ``.toml`` file.

    Returns
    -------
    ScanMeta
        The metadata (ranges are checked at ingest).
    """
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".toml":
            data: object = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise MonitorError(f"sidecar {path.name}: cannot read it ({exc})") from exc
    if not isinstance(data, dict):
        raise MonitorError(f"sidecar {path.name}: expected a table of keys")
    allowed = {f.name for f in fields(ScanMeta)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise MonitorError(
            f"sidecar {path.name}: unknown key(s) {', '.join(unknown)}; "
            f"use {', '.join(sorted(allowed))}"
        )
    values: dict[str, Any] = {}
    raw_time = data.get("captured_at")
    if isinstance(raw_time, datetime):
        values["captured_at"] = (
            raw_time.replace(tzinfo=UTC) if raw_time.tzinfo is None else raw_time
        ).astimezone(UTC)
    elif isinstance(raw_time, date):
        values["captured_at"] = datetime(raw_time.year, raw_time.month, raw_time.day, tzinfo=UTC)
    elif isinstance(raw_time, str):
        values["captured_at"] = repository.parse_time(raw_time)
    elif raw_time is not None:
        raise MonitorError(f"sidecar {path.name}: captured_at must be an ISO 8601 date-time")
    for key in _NUMBER_KEYS:
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MonitorError(f"sidecar {path.name}: {key} must be a number, got {value!r}")
        values[key] = float(value)
    for key in _TEXT_KEYS:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise MonitorError(f"sidecar {path.name}: {key} must be text, got {value!r}")
        values[key] = value
    return ScanMeta(**values)
