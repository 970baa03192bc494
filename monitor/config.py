"""Configuration in one place: defaults < TOML file < ``MONITOR_*`` environment < CLI flags.

The TOML file is ``$MONITOR_CONFIG`` if set, else ``monitor.toml`` in the
current directory, else ``~/.config/monitor/config.toml``. Keys are the field
names of :class:`Settings`; an environment variable is the upper-cased field
name prefixed with ``MONITOR_`` (``MONITOR_LIGHT_AZIMUTH=90``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from monitor.errors import MonitorError
from monitor.results import Light


@dataclass(frozen=True)
class Settings:
    """Every tunable of a comparison, with its default."""

    # data home (store: monitor.db + content-addressed files)
    home: str = "~/.local/share/monitor"
    database_url: str = ""  # empty: sqlite:///<home>/monitor.db
    # io
    max_pixels: int = 250_000_000
    # registration
    registration_max_px: int = 2400  # long side of the SIFT working image
    registration_min_inliers: int = 25
    residual_grid: int = 6  # nodes per side of the smooth residual warp
    # analysis
    analysis_max_px: int = 1600  # long side of the grid the change map is computed on
    method: str = "photometric"
    depth: str = "shading"
    device: str = "auto"
    # "auto": estimated from the scans (monitor.light); else degrees in [0, 360),
    # 0 = from the right, 90 = top, 180 = left (see results.Light)
    light_azimuth: str = "auto"
    light_elevation: float = 30.0  # (0, 90); the scans do not fix it
    strict_light: bool = False  # a given lamp the scans contradict is an error, not a warning
    # change detection
    significance_z: float = 6.0  # region seed threshold in noise sigmas (grows to half)
    min_region_frac: float = 0.004  # min region size as a fraction of the long side (squared)
    # scheduled runs (`monitor run`, see docs/inbox.md); none of these changes a result
    inbox: str = ""  # empty: <home>/inbox
    reports: str = ""  # empty: <home>/reports
    inbox_settle_s: float = 60.0  # leave files modified less than this many seconds ago
    lock_wait_s: float = 300.0  # how long `monitor run --wait` waits for another run
    busy_timeout_s: float = 30.0  # how long a database writer waits for another (SQLite)
    alert_command: str = ""  # argv (split like a shell, run without one); JSON on stdin
    alert_url: str = ""  # http(s) URL that receives the same JSON by POST
    alert_min_significance: float = 0.0  # alert when a region's significance reaches this

    def __post_init__(self) -> None:
        parse_light_azimuth(self.light_azimuth, "light_azimuth")
        check_elevation(self.light_elevation, "light_elevation")

    def replace(self, **changes: object) -> Settings:
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise MonitorError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def parse_light_azimuth(value: object, where: str = "light azimuth") -> float | None:
    """``"auto"`` -> None (estimate from the scans); a number -> degrees in [0, 360).

    Every entry (CLI flag, config file, ``MONITOR_LIGHT_AZIMUTH``, sidecar,
    ingest) goes through this one check.

    Raises
    ------
    MonitorError
        For anything else, naming ``where``.

    Examples
    --------
    >>> parse_light_azimuth("auto") is None
    True
    >>> parse_light_azimuth("90")
    90.0
    >>> parse_light_azimuth(400)
    Traceback (most recent call last):
    ...
    monitor.errors.MonitorError: light azimuth must be 'auto' or degrees in [0, 360), got 400
    """
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    try:
        az = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MonitorError(
            f"{where} must be 'auto' or degrees in [0, 360), got {value!r}"
        ) from None
    if not (math.isfinite(az) and 0.0 <= az < 360.0):
        raise MonitorError(f"{where} must be 'auto' or degrees in [0, 360), got {value}")
    return az


def check_elevation(value: object, where: str = "light elevation") -> float:
    """A lamp elevation in degrees, strictly between 0 and 90.

    Examples
    --------
    >>> check_elevation(30)
    30.0
    >>> check_elevation(90)
    Traceback (most recent call last):
    ...
    monitor.errors.MonitorError: light elevation must be degrees in (0, 90), got 90
    """
    try:
        el = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MonitorError(f"{where} must be degrees in (0, 90), got {value!r}") from None
    if not (math.isfinite(el) and 0.0 < el < 90.0):
        raise MonitorError(f"{where} must be degrees in (0, 90), got {value}")
    return el


def settings_light(settings: Settings) -> Light | None:
    """The lamp the settings give, or None for ``light_azimuth = "auto"``.

    Examples
    --------
    >>> settings_light(Settings()) is None
    True
    >>> settings_light(Settings(light_azimuth="90"))
    Light(azimuth_deg=90.0, elevation_deg=30.0)
    """
    az = parse_light_azimuth(settings.light_azimuth, "light_azimuth")
    return None if az is None else Light(az, float(settings.light_elevation))


def _coerce(name: str, value: object, kind: type) -> object:
    if name.lower().endswith("light_azimuth"):
        az = parse_light_azimuth(value, name)
        return "auto" if az is None else f"{az:g}"
    if name.lower().endswith("light_elevation"):
        return check_elevation(value, name)
    try:
        if kind is bool:
            return str(value).lower() in {"1", "true", "yes", "on"}
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise MonitorError(f"setting {name}: cannot read {value!r} as {kind.__name__}") from exc


def _config_path(environ: Mapping[str, str]) -> Path | None:
    if environ.get("MONITOR_CONFIG"):
        path = Path(environ["MONITOR_CONFIG"]).expanduser()
        if not path.is_file():
            raise MonitorError(f"MONITOR_CONFIG points to a missing file: {path}")
        return path
    for candidate in (Path("monitor.toml"), Path("~/.config/monitor/config.toml").expanduser()):
        if candidate.is_file():
            return candidate
    return None


def load_settings(
    environ: Mapping[str, str] | None = None, config_file: Path | None = None
) -> Settings:
    """Build :class:`Settings` from defaults, the TOML file and the environment."""
    environ = os.environ if environ is None else environ
    kinds = {f.name: type(f.default) for f in fields(Settings)}
    values: dict[str, object] = {}
    path = config_file or _config_path(environ)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise MonitorError(f"cannot read config file {path}: {exc}") from exc
        for key, value in data.items():
            if key not in kinds:
                raise MonitorError(f"config file {path}: unknown key {key!r}")
            values[key] = _coerce(key, value, kinds[key])
    for name, kind in kinds.items():
        env_name = f"MONITOR_{name.upper()}"
        if env_name in environ:
            values[name] = _coerce(env_name, environ[env_name], kind)
    return Settings(**values)  # type: ignore[arg-type]
