"""The web viewer through Starlette's TestClient: every route, JSON parity, security, tiles."""

from __future__ import annotations

import io
import json
import math
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from conftest import HOSTILE_TITLE
from PIL import Image

pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx")
from starlette.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from monitor import cli_history  # noqa: E402
from monitor.web import create_app, tiles  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def client(web_home: Path) -> TestClient:
    return TestClient(create_app(web_home))


def cli_json(home: Path, *args: str) -> object:
    import typer

    app = typer.Typer(pretty_exceptions_enable=False)
    cli_history.register(app)
    result = runner.invoke(app, [*args, "--home", str(home), "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_pages_and_their_json(client: TestClient, web_home: Path) -> None:
    # artworks: the same list `monitor artwork list --json` prints
    assert client.get("/api/artworks").json() == cli_json(web_home, "artwork", "list")
    assert [a["slug"] for a in client.get("/api/artworks?q=CANVAS").json()] == ["sample-canvas"]
    assert [a["slug"] for a in client.get("/api/artworks?q=synth").json()] == ["sample-canvas"]
    assert client.get("/api/artworks?q=rembrandt").json() == []
    page = client.get("/?q=sample")
    assert page.status_code == 200 and 'href="/artworks/sample-canvas"' in page.text
    assert "No artwork matches" in client.get("/?q=rembrandt").text

    # timeline: history is what `monitor history --json` prints
    api = client.get("/api/artworks/sample-canvas").json()
    assert api["history"] == cli_json(web_home, "history", "sample-canvas")
    assert [s["id"] for s in api["scans"]] == [1, 2]
    page = client.get("/artworks/sample-canvas")
    assert page.status_code == 200
    assert page.text.count('<figure class="scan">') == 2
    assert 'href="/comparisons/1"' in page.text
    for src in [line.split('src="')[1].split('"')[0] for line in page.text.splitlines()
                if "<img" in line]:
        image = client.get(src)
        assert image.status_code == 200 and image.headers["content-type"].startswith("image/")
    chart = client.get("/artworks/sample-canvas/trend.png")
    assert chart.status_code == 200 and chart.content[:8] == b"\x89PNG\r\n\x1a\n"

    # comparison: the stored detail plus the viewer's three pyramids
    detail = client.get("/api/comparisons/1").json()
    assert detail["id"] == 1 and detail["artwork"]["slug"] == "sample-canvas"
    assert len(detail["regions"]) == len(detail["viewer"]["regions"]) > 0
    assert set(detail["viewer"]["tiles"]) == {"baseline", "current", "change"}
    page = client.get("/comparisons/1")
    assert page.status_code == 200
    assert page.text.count('class="region ') == len(detail["regions"])
    assert 'href="/comparisons/1/report.pdf"' in page.text
    data = json.loads(page.text.split('id="viewer-data">')[1].split("</script>")[0])
    for name, info in data["tiles"].items():
        dzi = client.get(f"/tiles/{info['key']}.dzi")
        assert dzi.status_code == 200 and f'Width="{info["width"]}"' in dzi.text, name
        top = tiles.max_level(info["width"], info["height"])
        tile = client.get(f"/tiles/{info['key']}_files/{top}/0_0.{info['format']}")
        assert tile.status_code == 200 and "immutable" in tile.headers["cache-control"]
        assert Image.open(io.BytesIO(tile.content)).size == (255, 255)


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext (poppler-utils)")
def test_pdf_link(client: TestClient, tmp_path: Path) -> None:
    pdf = client.get("/comparisons/1/report.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")


def test_hostile_title_is_escaped(client: TestClient) -> None:
    for url in ("/", "/artworks/sample-canvas", "/comparisons/1"):
        text = client.get(url).text
        assert "<script>alert" not in text and "<b>canvas</b>" not in text, url
        assert "&lt;script&gt;alert(" in text, url
    # the JSON block in the comparison page cannot close its <script> element
    block = client.get("/comparisons/1").text.split('id="viewer-data">')[1].split("</script>")[0]
    assert "<" not in block
    assert client.get("/api/artworks").json()[0]["title"] == HOSTILE_TITLE


@pytest.mark.parametrize("url", [
    "/artworks/..%2F..%2Fetc%2Fpasswd",
    "/artworks/%2e%2e",
    "/artworks/Sample-Canvas",
    "/api/artworks/..%2Fmonitor.db",
    "/tiles/..%2F..%2Fmonitor.db.dzi",
    "/tiles/" + "a" * 63 + ".dzi",
    "/tiles/" + "0" * 64 + "_files/0/0_0.jpeg",
    "/static/..%2F..%2Fstore%2Fdb.py",
    "/static/../app.py",
    "/comparisons/0",
    "/comparisons/-1",
    "/comparisons/1.0",
    "/comparisons/" + "9" * 19,
    "/comparisons/" + "9" * 400,
    "/api/comparisons/" + "1" * 5000,
    "/api/comparisons/0x1",
    "/comparisons/2",
    "/objects",
    "/monitor.db",
])
def test_bad_addresses_are_not_found(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 404, url
    assert b"root:" not in response.content and b"SQLite format" not in response.content
    if url.startswith("/api/"):
        assert set(response.json()) == {"error"}


def test_tile_names_are_checked(client: TestClient) -> None:
    info = client.get("/api/comparisons/1").json()["viewer"]["tiles"]["baseline"]
    base = f"/tiles/{info['key']}_files"
    assert client.get(f"{base}/0/0_0.jpeg").status_code == 200
    for bad in ("0/0_0.png", "0/00_0.jpeg", "0/0_0.jpeg.part", "..%2F..%2Finfo.json",
                "99/0_0.jpeg", "0/../../info.json", "0/%2e%2e%2f0_0.jpeg", "01/0_0.jpeg"):
        assert client.get(f"{base}/{bad}").status_code == 404, bad


def test_no_write_endpoint(client: TestClient) -> None:
    for method in ("post", "put", "delete", "patch"):
        for url in ("/", "/api/artworks", "/api/comparisons/1", "/comparisons/1"):
            assert getattr(client, method)(url).status_code == 405, (method, url)


def test_security_headers(client: TestClient) -> None:
    response = client.get("/comparisons/1")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert client.get("/static/viewer.js").headers["x-frame-options"] == "DENY"


def _copy_home(web_home: Path, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(web_home, home, ignore=shutil.ignore_patterns("cache"))
    return home


def test_database_paths_must_stay_inside_the_home(web_home: Path, tmp_path: Path) -> None:
    home = _copy_home(web_home, tmp_path)
    secret = tmp_path / "secret.png"
    Image.new("RGB", (64, 64), (255, 0, 0)).save(secret)
    with sqlite3.connect(home / "monitor.db") as con:
        con.execute("UPDATE scan SET stored_path = '../secret.png' WHERE id = 1")
    client = TestClient(create_app(home))
    for url in ("/artworks/sample-canvas", "/comparisons/1", "/api/comparisons/1"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "outside" in response.text
    assert not (home / "cache").exists()  # nothing was tiled from the outside file


def test_a_link_out_of_the_store_is_refused(web_home: Path, tmp_path: Path) -> None:
    home = _copy_home(web_home, tmp_path)
    with sqlite3.connect(home / "monitor.db") as con:
        rel = con.execute("SELECT stored_path FROM scan WHERE id = 2").fetchone()[0]
    target = home / rel
    outside = tmp_path / "outside.png"
    shutil.move(target, outside)
    target.symlink_to(outside)
    response = TestClient(create_app(home)).get("/comparisons/1")
    assert response.status_code == 403


def test_a_missing_home_is_a_clear_error(tmp_path: Path) -> None:
    from monitor.errors import MonitorError

    with pytest.raises(MonitorError, match="monitor init"):
        create_app(tmp_path / "nowhere")


# --------------------------------------------------------------------------- tiles


def test_pyramid_levels_and_tiles_match_the_image(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, size=(300, 517, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB")
    key = tiles.recipe_key({"kind": "test", "n": 1})
    info = tiles.ensure_pyramid(tmp_path, key, lambda: image, fmt="png")
    assert (info.width, info.height, info.max_level) == (517, 300, 10)
    root = tiles.cache_dir(tmp_path) / key / "image_files"
    assert sorted(int(p.name) for p in root.iterdir()) == list(range(11))
    assert sorted(p.name for p in (root / "0").iterdir()) == ["0_0.png"]
    assert Image.open(root / "0" / "0_0.png").size == (1, 1)
    # full resolution: 3 x 2 tiles of 254 px plus 1 px overlap, pixel-exact (PNG)
    assert len(list((root / "10").iterdir())) == 6
    tile = np.asarray(Image.open(root / "10" / "1_1.png"))
    assert tile.shape == (300 - 253, 1 + 254 + 1, 3)
    np.testing.assert_array_equal(tile, pixels[253:300, 253:509])
    # the level below halves the size, rounding up
    assert Image.open(root / "9" / "1_0.png").size == (math.ceil(517 / 2) - 253, 150)
    assert tiles.cached(tmp_path, key) == info


def test_pyramid_is_built_once_and_atomically(tmp_path: Path) -> None:
    calls = []

    def make() -> Image.Image:
        calls.append(1)
        return Image.new("RGB", (40, 30), (10, 20, 30))

    key = tiles.recipe_key({"kind": "test", "n": 2})
    first = tiles.ensure_pyramid(tmp_path, key, make)
    second = tiles.ensure_pyramid(tmp_path, key, make)
    assert first == second and calls == [1]
    assert list((tmp_path / "tmp").iterdir()) == []  # staging removed

    def broken() -> Image.Image:
        raise OSError("disk full")

    other = tiles.recipe_key({"kind": "test", "n": 3})
    with pytest.raises(Exception, match="disk full"):
        tiles.ensure_pyramid(tmp_path, other, broken)
    assert tiles.cached(tmp_path, other) is None
    assert not (tiles.cache_dir(tmp_path) / other).exists()
    assert list((tmp_path / "tmp").iterdir()) == []
    with pytest.raises(Exception, match="invalid tile key"):
        tiles.ensure_pyramid(tmp_path, "../x", make)


def test_concurrent_requests_build_a_pyramid_once(tmp_path: Path) -> None:
    import threading

    calls = []
    gate = threading.Event()

    def make() -> Image.Image:
        calls.append(1)
        gate.wait(5)
        return Image.new("RGB", (64, 48))

    key = tiles.recipe_key({"kind": "test", "n": 4})
    results: list[tiles.DziInfo] = []
    threads = [threading.Thread(target=lambda: results.append(
        tiles.ensure_pyramid(tmp_path, key, make))) for _ in range(4)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(10)
    assert calls == [1] and len(results) == 4 and len(set(results)) == 1


def test_warp_uses_the_stored_homography(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 256, size=(80, 100, 3), dtype=np.uint8)
    path = tmp_path / "cur.png"
    Image.fromarray(pixels).save(path)
    same = np.asarray(tiles.warped_image(path, (1, 0, 0, 0, 1, 0, 0, 0, 1), (100, 80), 10**7))
    np.testing.assert_array_equal(same, pixels)
    # CURRENT (x, y) lies at BASELINE (x + 7, y - 3): baseline pixel (x, y) shows current (x-7, y+3)
    moved = np.asarray(tiles.warped_image(path, (1, 0, 7, 0, 1, -3, 0, 0, 1), (100, 80), 10**7))
    np.testing.assert_array_equal(moved[10:70, 20:90], pixels[13:73, 13:83])


def test_change_overlay_colours_and_transparency(tmp_path: Path) -> None:
    from monitor.io import write_float_tiff

    change = np.zeros((40, 50), np.float32)
    change[5:10, 5:10] = 2.0
    change[20:25, 30:35] = -2.0
    change[:, 45:] = np.nan
    write_float_tiff(tmp_path / "change.tif", change)
    rgba, vmax = tiles.change_overlay(tmp_path / "change.tif")
    a = np.asarray(rgba)
    assert vmax == pytest.approx(2.0)
    assert a[7, 7, 3] == 255 and a[7, 7, 0] > a[7, 7, 2]  # rise: opaque red
    assert a[22, 32, 3] == 255 and a[22, 32, 2] > a[22, 32, 0]  # recession: opaque blue
    assert a[30, 10, 3] == 0 and a[0, 47, 3] == 0  # no change and no data: transparent



def test_the_viewer_never_imports_the_algorithms(web_home: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from starlette.testclient import TestClient;"
        "from monitor.web import create_app;"
        f"c = TestClient(create_app(Path({str(web_home)!r})));"
        "assert all(c.get(u).status_code == 200 for u in "
        "('/', '/artworks/sample-canvas', '/comparisons/1', '/api/comparisons/1'));"
        "bad = [m for m in sys.modules if m.split('.')[:2] in (['monitor', 'pipeline'], "
        "['monitor', 'change'], ['monitor', 'depth'], ['monitor', 'registration'])"
        " or m in ('torch', 'kornia')];"
        "print(bad); assert not bad"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
