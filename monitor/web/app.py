"""The read-only web viewer of an artwork history (Starlette + Jinja2, served by uvicorn).

Pages and their JSON twins (``/api/...``, the data the CLI's ``--json`` prints):

=========================================  =============================================
``/``  (``?q=`` search)                    ``/api/artworks`` (``monitor artwork list``)
``/artworks/{slug}``  timeline             ``/api/artworks/{slug}`` (artwork, scans,
                                           ``monitor history --json``)
``/comparisons/{id}``  deep zoom           ``/api/comparisons/{id}`` (the stored detail
                                           + the viewer's tile sources)
=========================================  =============================================

Files: ``/tiles/{key}.dzi`` and ``/tiles/{key}_files/{level}/{col}_{row}.{fmt}``
(content-addressed pyramids, :mod:`monitor.web.tiles`), ``/artworks/{slug}/trend.png``
and ``/comparisons/{id}/report.pdf`` (rendered on request).

Security: only GET/HEAD routes; everything is addressed by database id, slug
(validated) or a 64-hex cache key, never by a path from the request; every
path read from the database must resolve inside the data home; templates
autoescape; responses carry a strict Content-Security-Policy.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import shutil
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

import monitor.web.queries as queries
import monitor.web.tiles as tiles
from monitor.config import Settings, load_settings
from monitor.errors import MonitorError
from monitor.store import db, repository
from monitor.store.repository import ComparisonDetail, ScanInfo
from monitor.web.queries import NotFound, Refused

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
OSD_DIR = STATIC_DIR / "vendor" / "openseadragon"
_TILE_NAME = re.compile(r"(0|[1-9][0-9]{0,5})_(0|[1-9][0-9]{0,5})\.(jpeg|png)")
_LEVEL = re.compile(r"0|[1-9][0-9]?")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class Viewer:
    """The application's state and endpoints over one open store."""

    def __init__(self, store: db.Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        # autoescape for every template (Jinja's default keys on .html, not .html.j2)
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates = Jinja2Templates(env=env)
        self.templates.env.globals["osd_vendored"] = (OSD_DIR / "openseadragon.min.js").is_file()

    # ------------------------------------------------------------------ helpers

    def _slug(self, request: Request) -> str:
        slug = request.path_params["slug"]
        try:
            return repository.validate_slug(slug)
        except MonitorError as exc:
            raise NotFound("no such artwork") from exc

    def _file(self, path: Path) -> Path:
        resolved = queries.inside_home(self.store.home, path)
        if not resolved.is_file():
            raise NotFound("a stored file is missing")
        return resolved

    def _detail(self, request: Request) -> ComparisonDetail:
        cid = queries.parse_id(request.path_params["cid"])
        try:
            return repository.comparison_detail(self.store, cid)
        except NotFound:
            raise
        except MonitorError as exc:
            raise NotFound(str(exc)) from exc

    def _scan_pyramid(self, scan: ScanInfo) -> tiles.DziInfo:
        key = tiles.recipe_key({"kind": "scan", "sha256": scan.sha256})
        path = self._file(scan.path)
        return tiles.ensure_pyramid(
            self.store.home, key, lambda: tiles.scan_image(path, self.settings.max_pixels)
        )

    def _comparison_pyramids(self, detail: ComparisonDetail) -> dict[str, tiles.DziInfo | None]:
        base = detail.baseline
        size = (base.width, base.height)
        cur_path = self._file(detail.current.path)
        warped_key = tiles.recipe_key({
            "kind": "warped", "sha256": detail.current.sha256, "size": list(size),
            "homography": [float(v) for v in detail.homography],
        })
        out: dict[str, tiles.DziInfo | None] = {
            "baseline": self._scan_pyramid(base),
            "current": tiles.ensure_pyramid(
                self.store.home,
                warped_key,
                lambda: tiles.warped_image(
                    cur_path, detail.homography, size, self.settings.max_pixels
                ),
            ),
            "change": None,
        }
        change = detail.artifacts.get("change.tif")
        if change is not None:
            change_path = self._file(change)
            # artifacts are content-addressed (objects/ab/<sha256>.tif): the name is the hash
            sha = change_path.name.split(".")[0]
            if not tiles.KEY_PATTERN.fullmatch(sha):
                sha = repository.sha256_file(change_path)
            key = tiles.recipe_key({"kind": "change", "sha256": sha})
            out["change"] = tiles.ensure_pyramid(
                self.store.home, key, lambda: tiles.change_overlay(change_path)[0], fmt="png"
            )
        return out

    @staticmethod
    def _thumb_url(info: tiles.DziInfo) -> str:
        longest = max(info.width, info.height)
        down = max(0, math.ceil(math.log2(longest / info.tile_size))) if longest else 0
        return f"/tiles/{info.key}_files/{info.max_level - down}/0_0.{info.format}"

    def _page(self, request: Request, name: str, context: dict[str, Any]) -> Response:
        return self.templates.TemplateResponse(request, name, context)

    # ------------------------------------------------------------------ artworks

    def _artworks(self, request: Request) -> tuple[str, list[dict[str, Any]]]:
        query = request.query_params.get("q", "")[:200]
        return query, [a.to_dict() for a in queries.search_artworks(self.store, query)]

    def artworks_page(self, request: Request) -> Response:
        query, found = self._artworks(request)
        return self._page(request, "artworks.html.j2", {"query": query, "artworks": found})

    def artworks_api(self, request: Request) -> Response:
        return JSONResponse(_clean(self._artworks(request)[1]))

    # ------------------------------------------------------------------ timeline

    def _timeline(self, request: Request) -> dict[str, Any]:
        slug = self._slug(request)
        try:
            hist = repository.history(self.store, slug)
            scans = repository.list_scans(self.store, slug)
        except MonitorError as exc:
            raise NotFound(str(exc)) from exc
        return {"history": hist, "scans": scans}

    def artwork_page(self, request: Request) -> Response:
        data = self._timeline(request)
        thumbs = {s.id: self._thumb_url(self._scan_pyramid(s)) for s in data["scans"]}
        hist = data["history"]
        return self._page(request, "artwork.html.j2", {
            "artwork": hist.artwork.to_dict(),
            "history": hist.to_dict(),
            "scans": [s.to_dict() for s in data["scans"]],
            "thumbs": thumbs,
        })

    def artwork_api(self, request: Request) -> Response:
        data = self._timeline(request)
        hist = data["history"]
        return JSONResponse(_clean({
            "artwork": hist.artwork.to_dict(),
            "scans": [s.to_dict() for s in data["scans"]],
            "history": hist.to_dict(),
        }))

    def trend_png(self, request: Request) -> Response:
        from monitor.report.charts import history_chart_png

        hist = self._timeline(request)["history"]
        if not hist.entries:
            raise NotFound("no comparison to chart")
        staging = self.store.tmp_dir / f"web-chart-{uuid.uuid4().hex}.png"
        try:
            history_chart_png(hist, staging)
            body = staging.read_bytes()
        finally:
            staging.unlink(missing_ok=True)
        return Response(body, media_type="image/png", headers={"cache-control": "no-cache"})

    # ------------------------------------------------------------------ comparison

    def _viewer_data(self, detail: ComparisonDetail) -> dict[str, Any]:
        pyramids = self._comparison_pyramids(detail)
        return {
            "comparison_id": detail.id,
            "width": detail.baseline.width,
            "height": detail.baseline.height,
            "tiles": {k: None if v is None else v.to_dict() for k, v in pyramids.items()},
            "tile_sources": {
                k: None if v is None else v.tile_source() for k, v in pyramids.items()
            },
            "regions": [r.to_dict() for r in detail.regions],
            "osd_prefix": "/static/vendor/openseadragon/images/",
        }

    def comparison_page(self, request: Request) -> Response:
        detail = self._detail(request)
        viewer = self._viewer_data(detail)
        return self._page(request, "comparison.html.j2", {
            "detail": detail.to_dict(),
            "regions": viewer["regions"],
            "viewer": _clean(viewer),
            "appearance": getattr(detail, "appearance_findings", None),
            "pdf_url": f"/comparisons/{detail.id}/report.pdf",
        })

    def comparison_api(self, request: Request) -> Response:
        detail = self._detail(request)
        out = detail.to_dict()
        out["viewer"] = self._viewer_data(detail)
        return JSONResponse(_clean(out))

    def report_pdf(self, request: Request) -> Response:
        detail = self._detail(request)
        from monitor.report.render import write_report

        staging = self.store.tmp_dir / f"web-report-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            write_report(self.store, detail.id, staging / "report.pdf")
            body = (staging / "report.pdf").read_bytes()
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return Response(body, media_type="application/pdf", headers={
            "content-disposition": f'inline; filename="comparison-{detail.id}.pdf"'
        })

    # ------------------------------------------------------------------ tiles

    def _pyramid(self, key: str) -> tiles.DziInfo:
        info = tiles.cached(self.store.home, key)
        if info is None:
            raise NotFound("no such tiles")
        return info

    def dzi(self, request: Request) -> Response:
        info = self._pyramid(request.path_params["key"])
        return Response(tiles.dzi_xml(info), media_type="application/xml")

    def tile(self, request: Request) -> Response:
        info = self._pyramid(request.path_params["key"])
        level, name = request.path_params["level"], request.path_params["name"]
        match = _TILE_NAME.fullmatch(name)
        if not _LEVEL.fullmatch(level) or match is None or match.group(3) != info.format:
            raise NotFound("no such tile")
        path = tiles.cache_dir(self.store.home) / info.key / "image_files" / level / name
        resolved = self._file(path)
        return FileResponse(resolved, headers={"cache-control": "public, max-age=31536000, "
                                               "immutable"})


async def _error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, Refused):
        status, message = 403, str(exc)
    elif isinstance(exc, NotFound):
        status, message = 404, str(exc)
    elif isinstance(exc, HTTPException):
        status, message = exc.status_code, str(exc.detail)
    elif isinstance(exc, MonitorError):
        status, message = 500, str(exc)
    else:
        log.exception("viewer error", exc_info=exc)
        status, message = 500, "internal error"
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status)
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request, "error.html.j2", {"status": status, "message": message}, status_code=status
    )


def create_app(home: Path, settings: Settings | None = None) -> Starlette:
    """The viewer application over an initialised data home.

    Parameters
    ----------
    home
        Data home (``monitor init``); opened read-only in use: the viewer only
        adds tile pyramids under ``<home>/cache/web`` and stages files in
        ``<home>/tmp``.
    settings
        Settings (database URL, pixel limit); loaded from the environment when None.

    Returns
    -------
    starlette.applications.Starlette
        An ASGI application; serve it with uvicorn (:func:`monitor.web.serve`).

    Examples
    --------
    >>> from starlette.testclient import TestClient
    >>> client = TestClient(create_app(home))  # doctest: +SKIP
    >>> client.get("/api/artworks").json()  # doctest: +SKIP
    [{'slug': 'sample-canvas', 'title': 'Sample canvas', ...}]
    """
    settings = settings if settings is not None else load_settings()
    store = db.open_store(db.resolve_home(home, settings), settings)
    viewer = Viewer(store, settings)
    if not OSD_DIR.is_dir():
        log.warning("OpenSeadragon is not vendored (%s); run 'make web-assets'", OSD_DIR)
    routes = [
        Route("/", viewer.artworks_page, name="artworks"),
        Route("/api/artworks", viewer.artworks_api),
        Route("/artworks/{slug}", viewer.artwork_page, name="artwork"),
        Route("/artworks/{slug}/trend.png", viewer.trend_png),
        Route("/api/artworks/{slug}", viewer.artwork_api),
        Route("/comparisons/{cid}", viewer.comparison_page, name="comparison"),
        Route("/comparisons/{cid}/report.pdf", viewer.report_pdf),
        Route("/api/comparisons/{cid}", viewer.comparison_api),
        Route("/tiles/{key}.dzi", viewer.dzi),
        Route("/tiles/{key}_files/{level}/{name}", viewer.tile),
        Mount("/static", StaticFiles(directory=str(STATIC_DIR), follow_symlink=False),
              name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={Exception: _error, HTTPException: _error, MonitorError: _error},
    )
    app.state.templates = viewer.templates
    app.state.viewer = viewer
    app.add_middleware(SecurityHeaders)
    return app


def serve(home: Path | None = None, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the viewer with uvicorn until interrupted (``monitor serve``).

    Parameters
    ----------
    home
        Data home (None: ``MONITOR_HOME`` / settings).
    host
        Interface to bind; localhost by default (the viewer has no login).
    port
        TCP port.

    Examples
    --------
    >>> serve(Path("demo_out/home"))  # doctest: +SKIP
    """
    import uvicorn

    settings = load_settings()
    app = create_app(db.resolve_home(home, settings), settings)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(app, host=host, port=port, log_level="info")
