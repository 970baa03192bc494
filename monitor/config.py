"""Configuration in one place: defaults < TOML file < ``MONITOR_*`` environment < CLI flags.

The TOML file is ``$MONITOR_CONFIG`` if set, else ``monitor.toml`` in the
current directory, else ``~/.config/monitor/config.toml``. Keys are the field
names of :class:`Settings`; an environment variable is the upper-cased field
name prefixed with ``MONITOR_`` (``MONITOR_LIGHT_AZIMUTH=90``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from monitor.errors import MonitorError


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
    # "grid": one grid of analysis_max_px; "auto": every scale from the native
    # pixel up, in tiles (photometric method only; see monitor.change.multiscale)
    scale: str = "grid"
    tile: int = 1024  # tile core size of the multi-scale route, pixels of each level
    depth: str = "shading"
    device: str = "auto"
    light_azimuth: float = 180.0  # degrees, 180 = from the left (see results.Light)
    light_elevation: float = 30.0
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

    def replace(self, **changes: object) -> Settings:
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise MonitorError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _coerce(name: str, value: object, kind: type) -> object:
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
