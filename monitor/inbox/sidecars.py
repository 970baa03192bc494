"""Sidecar files (.json / .toml) beside a scan: its capture metadata."""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from monitor.config import validate_light
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
    allowed = {f.name for f in fields(ScanMeta)} - {"light_source"}  # that one is ours
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise MonitorError(
            f"sidecar {path.name}: unknown key(s) {', '.join(unknown)}; "
            f"use {', '.join(sorted(allowed))}"
        )
    try:
        values = _sidecar_values(data)
    except MonitorError as exc:
        raise MonitorError(f"sidecar {path.name}: {exc}") from exc
    return ScanMeta(**values, light_source="sidecar")


def _sidecar_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """A sidecar's values, each checked as the ingest flags are (ranges, text, time)."""
    values: dict[str, Any] = {}
    raw_time = data.get("captured_at")
    if isinstance(raw_time, datetime):
        values["captured_at"] = repository.to_utc(raw_time)
    elif isinstance(raw_time, date):
        values["captured_at"] = datetime(raw_time.year, raw_time.month, raw_time.day, tzinfo=UTC)
    elif isinstance(raw_time, str):
        values["captured_at"] = repository.parse_time(raw_time)
    elif raw_time is not None:
        raise MonitorError("captured_at must be an ISO 8601 date-time")
    for key in _NUMBER_KEYS:
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MonitorError(f"{key} must be a number, got {str(value)[:40]!r}")
        try:
            number = float(value)
        except OverflowError:  # a JSON integer of 400 digits
            number = math.inf
        if key == "px_per_mm" and not (math.isfinite(number) and number > 0):
            raise MonitorError(f"px_per_mm must be a positive finite number, got {str(value)[:40]}")
        values[key] = number
    validate_light(values.get("light_azimuth"), values.get("light_elevation"))
    for key in _TEXT_KEYS:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise MonitorError(f"{key} must be text, got {str(value)[:40]!r}")
        values[key] = repository.check_text(key, value, 100_000 if key == "notes" else 200)
    return values
