"""Configuration in one place: defaults < TOML file < ``MONITOR_*`` environment < CLI flags.

The TOML file is ``$MONITOR_CONFIG`` if set, else ``monitor.toml`` in the
current directory, else ``~/.config/monitor/config.toml``. Keys are the field
names of :class:`Settings`; an environment variable is the upper-cased field
name prefixed with ``MONITOR_`` (``MONITOR_LIGHT_AZIMUTH=90``).

Every value is checked where it enters (TOML, environment, CLI flag through
:meth:`Settings.replace`): its type, and its range (:func:`check_setting`);
an error is one line that names the key and where it came from. The light's
direction is checked by :func:`validate_light` alone, which the ingest
flags, the inbox sidecars and the stored scans use as well.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

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
    # "auto" (default): the finest route the method has -- every scale from the native
    # pixel up, in tiles, for photometric and pair (monitor.change.multiscale,
    # monitor.change.pair_multiscale); the one grid for depth (see scale_route).
    # "grid": one grid of analysis_max_px. The benchmark chose auto (docs/finescale.md)
    scale: str = "auto"
    tile: int = 1024  # tile core size of the multi-scale route, pixels of each level
    # the multi-scale route's absolute floor on a region's peak height change: mm when the
    # scan's px/mm is known, else baseline pixel pitches (at native resolution the level of
    # detection is ~1 um, so faint texture residuals would pass z); chosen on TRAIN_SEEDS
    # pairs at 2 and 6 MP, never on test pairs (docs/finescale.md)
    fine_min_height_mm: float = 0.02
    fine_min_height_px: float = 0.12
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
    # absolute floor of the level of detection, baseline pixel pitch: no region is seeded by
    # a change smaller than this, however quiet the noise (resampling residue of identical
    # or near-identical scans); applies to methods measuring in pixels (README, Level of detection)
    min_height_change: float = 0.05
    # below this share of the overlap usable (not clipped, masked or too dark) the result is
    # flagged "insufficient": the comparison cannot tell, it does not say "no change"
    min_usable_fraction: float = 0.25
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
        check_setting("light_azimuth", self.light_azimuth)
        check_setting("light_elevation", self.light_elevation)

    def replace(self, *, source: str = "flag", **changes: object) -> Settings:
        """A copy with ``changes`` applied, each checked (type and range) first.

        Parameters
        ----------
        source
            Where the values come from, for the error message: ``"flag"``
            names the key as its CLI flag (``--light-elevation``).
        **changes
            Field name -> new value.

        Returns
        -------
        Settings
            The new settings.

        Examples
        --------
        >>> Settings().replace(light_elevation=20.0).light_elevation
        20.0
        >>> Settings().replace(light_elevation=-30.0)
        Traceback (most recent call last):
        ...
        monitor.errors.MonitorError: --light-elevation = -30.0 (flag): must be above 0 and \
below 90 degrees
        """
        kinds = _kinds()
        unknown = set(changes) - set(kinds)
        if unknown:
            raise MonitorError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        checked: dict[str, Any] = {}
        for name, value in changes.items():
            label = f"--{name.replace('_', '-')}" if source == "flag" else name
            checked[name] = check_setting(
                name, _coerce(label, value, kinds[name], source), source, label=label
            )
        return dataclasses.replace(self, **checked)


def _kinds() -> dict[str, type]:
    return {f.name: type(f.default) for f in fields(Settings)}


def _where(label: str, value: object, source: str) -> str:
    shown = repr(value) if isinstance(value, str) else str(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{label} = {shown} ({source})" if source else f"{label} = {shown}"


def _coerce(label: str, value: object, kind: type, source: str = "") -> object:
    """``value`` as ``kind``; strings (environment) are parsed, other types must match."""
    problem = f"{_where(label, value, source)}: not a{'n' if kind is int else ''} "
    problem += {bool: "boolean", int: "integer", float: "number", str: "text"}.get(
        kind, kind.__name__
    )
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
        raise MonitorError(problem)
    if kind is str:
        if label.lower().replace("-", "_").endswith("light_azimuth") and isinstance(
            value, int | float
        ) and not isinstance(value, bool):
            return f"{value:g}"  # a number of degrees (TOML 90, a flag's float)
        if not isinstance(value, str):
            raise MonitorError(problem)
        return value
    if isinstance(value, bool):  # a TOML true is not a number
        raise MonitorError(problem)
    try:
        if kind is int:
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError(value)
                return int(value)
            return int(str(value).strip()) if isinstance(value, str) else int(value)  # type: ignore[call-overload]
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError) as exc:
        raise MonitorError(problem) from exc


# --------------------------------------------------------------------------- ranges

#: Light azimuth, degrees: [0, 360) (0 = from the right, counter-clockwise).
AZIMUTH_RANGE = (0.0, 360.0)
#: Light elevation above the picture plane, degrees: open interval (0, 90).
ELEVATION_RANGE = (0.0, 90.0)


def validate_light(
    azimuth: float | str | None = None,
    elevation: float | str | None = None,
    *,
    source: str = "",
    names: tuple[str, str] = ("light_azimuth", "light_elevation"),
) -> tuple[float | None, float | None]:
    """Check a light direction; the one place its ranges are decided.

    Parameters
    ----------
    azimuth
        Degrees in [0, 360), or None (not given). Text is parsed as a number.
    elevation
        Degrees above the picture plane, strictly between 0 and 90 (0 grazes,
        a negative one would invert every polarity, 90 casts no shading), or None.
    source
        Where the values came from (``flag``, ``environment``, a file name), for
        the message.
    names
        How to call the two values in the message (a key, a flag, a field).

    Returns
    -------
    tuple
        (azimuth, elevation) as floats (None stays None).

    Examples
    --------
    >>> validate_light(90, "25")
    (90.0, 25.0)
    >>> validate_light(float("nan"), None, source="flag", names=("--light-azimuth", ""))
    Traceback (most recent call last):
    ...
    monitor.errors.MonitorError: --light-azimuth = nan (flag): must be a number from 0 up to \
(not including) 360 degrees
    """
    # "auto" (estimate the lamp) is the one keyword: see parse_light_azimuth
    out: list[float | None] = []
    for value, name, ok, words in (
        (azimuth, names[0], lambda v: AZIMUTH_RANGE[0] <= v < AZIMUTH_RANGE[1],
         f"a number from {AZIMUTH_RANGE[0]:g} up to (not including) {AZIMUTH_RANGE[1]:g} degrees"),
        (elevation, names[1], lambda v: ELEVATION_RANGE[0] < v < ELEVATION_RANGE[1],
         f"above {ELEVATION_RANGE[0]:g} and below {ELEVATION_RANGE[1]:g} degrees"),
    ):
        if value is None:
            out.append(None)
            continue
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError, OverflowError):
            number = math.nan
        if isinstance(value, bool) or not math.isfinite(number) or not ok(number):
            raise MonitorError(f"{_where(name, value, source)}: must be {words}")
        out.append(number)
    return out[0], out[1]


def _at_least(low: float) -> Callable[[float], str | None]:
    return lambda v: None if v >= low else f"must be at least {low:g}"


def _between(low: float, high: float) -> Callable[[float], str | None]:
    return lambda v: None if low < v < high else f"must be above {low:g} and below {high:g}"


#: Settings.scale values: every scale at full resolution where the method has a
#: route for it, or one analysis grid.
SCALES = ("auto", "grid")
#: Methods with a multi-scale route (``scale="auto"`` runs it; the others use the grid).
MULTISCALE_METHODS = ("photometric", "pair")
#: Scans whose long side is below this take the grid with ``scale="auto"``: their
#: pyramid (levels down to 96 px) would have fewer than three levels to choose a
#: scale from, and the grid sees every one of their pixels.
MULTISCALE_MIN_SIDE = 384


def scale_route(settings: Settings, shape: tuple[int, int] | None = None) -> str:
    """The route a comparison takes: ``"auto"`` (every scale) or ``"grid"`` (one grid).

    ``scale="auto"`` asks for the finest route the method has; a method without a
    multi-scale route (see :data:`MULTISCALE_METHODS`), or a scan of ``shape``
    (rows, cols) smaller than :data:`MULTISCALE_MIN_SIDE`, then runs on the grid,
    and the comparison records ``scale: grid`` with the smallest size it can detect.

    Examples
    --------
    >>> scale_route(Settings())
    'auto'
    >>> scale_route(Settings(method="depth"))
    'grid'
    >>> scale_route(Settings(scale="grid"))
    'grid'
    >>> scale_route(Settings(), shape=(120, 160))
    'grid'
    """
    if settings.scale != "auto" or settings.method not in MULTISCALE_METHODS:
        return "grid"
    if shape is not None and max(shape) < MULTISCALE_MIN_SIDE:
        return "grid"
    return "auto"


_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d{1,2})?")
_RULES: dict[str, Callable[[Any], str | None]] = {
    "max_pixels": _at_least(1),
    "registration_max_px": _at_least(64),
    "registration_min_inliers": _at_least(4),
    "residual_grid": lambda v: None if v == 0 or 3 <= v <= 64 else "must be 0 (off) or 3..64",
    "analysis_max_px": _at_least(32),
    "device": lambda v: None if _DEVICE.fullmatch(v) else "must be auto, cpu, mps, cuda or cuda:N",
    "significance_z": _between(0.0, 1e6),
    "min_region_frac": _between(0.0, 1.0),
    "min_height_change": _at_least(0.0),
    "tile": _at_least(64),
    "scale": lambda v: None if v in SCALES else f"must be one of: {', '.join(SCALES)}",
    "fine_min_height_mm": _at_least(0.0),
    "fine_min_height_px": _at_least(0.0),
    "min_usable_fraction": lambda v: None if 0.0 <= v <= 1.0 else "must be within 0..1",
    "inbox_settle_s": _at_least(0.0),
    "lock_wait_s": _at_least(0.0),
    "busy_timeout_s": _at_least(0.0),
    "alert_min_significance": _at_least(0.0),
}


def check_setting(name: str, value: Any, source: str = "", *, label: str | None = None) -> Any:
    """Check one setting's value against its range; return it unchanged.

    Parameters
    ----------
    name
        Field of :class:`Settings`.
    value
        Its value, already of the field's type.
    source
        Where it came from, for the message (``flag``, ``environment``, a file).
    label
        How to call it in the message (default ``name``).

    Returns
    -------
    object
        ``value``.

    Examples
    --------
    >>> check_setting("residual_grid", 6)
    6
    >>> check_setting("busy_timeout_s", -1.0, "environment", label="MONITOR_BUSY_TIMEOUT_S")
    Traceback (most recent call last):
    ...
    monitor.errors.MonitorError: MONITOR_BUSY_TIMEOUT_S = -1.0 (environment): must be at least 0
    """
    label = label or name
    if name == "light_azimuth" and isinstance(value, str) and value.strip().lower() == "auto":
        return value
    if name in ("light_azimuth", "light_elevation"):
        names = (label, label)
        pair = (value, None) if name == "light_azimuth" else (None, value)
        validate_light(*pair, source=source, names=names)
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise MonitorError(f"{_where(label, value, source)}: must be a finite number")
    rule = _RULES.get(name)
    problem = rule(value) if rule is not None else None
    if problem:
        raise MonitorError(f"{_where(label, value, source)}: {problem}")
    return value


def parse_light_azimuth(value: object, where: str = "light azimuth", source: str = ""
                        ) -> float | None:
    """``"auto"`` -> None (estimate from the scans); a number -> degrees in [0, 360).

    The azimuth's range is :func:`validate_light`'s; this adds the keyword.

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
    monitor.errors.MonitorError: light azimuth = 400: must be 'auto' or a number from 0 up to \
(not including) 360 degrees
    """
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    try:
        az, _ = validate_light(value, None, source=source, names=(where, ""))  # type: ignore[arg-type]
    except MonitorError as exc:
        raise MonitorError(str(exc).replace(": must be a number", ": must be 'auto' or a number")
                           ) from None
    return az


def check_elevation(value: object, where: str = "light elevation", source: str = "") -> float:
    """A lamp elevation in degrees, strictly between 0 and 90 (:func:`validate_light`).

    Examples
    --------
    >>> check_elevation(30)
    30.0
    >>> check_elevation(90)
    Traceback (most recent call last):
    ...
    monitor.errors.MonitorError: light elevation = 90: must be above 0 and below 90 degrees
    """
    _, el = validate_light(None, value, source=source, names=("", where))  # type: ignore[arg-type]
    assert el is not None
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
    kinds = _kinds()
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
            where = f"config file {path}"
            values[key] = check_setting(key, _coerce(key, value, kinds[key], where), where)
    for name, kind in kinds.items():
        env_name = f"MONITOR_{name.upper()}"
        if env_name in environ:
            value = _coerce(env_name, environ[env_name], kind, "environment")
            values[name] = check_setting(name, value, "environment", label=env_name)
    return Settings(**values)  # type: ignore[arg-type]
