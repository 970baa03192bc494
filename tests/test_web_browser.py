"""The viewer in a real browser: Debian's chromium + chromium-driver through Selenium.

One uvicorn server on 127.0.0.1 (a free port) serves the session's sample
history; headless Chromium opens each page, zooms, moves the swipe, changes
the overlay opacity and clicks a region. Screenshots go to the test's temp
folder (and to ``$MONITOR_SCREENSHOTS`` when set, e.g. ``docs/images``).
Skips with the reason when no browser can start.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monitor.web import create_app
from monitor.web.app import OSD_DIR
from monitor.web.tiles import max_level

selenium = pytest.importorskip("selenium", reason="needs selenium (pip install selenium)")
uvicorn = pytest.importorskip("uvicorn")
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").is_file() else None
)
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1400,1000",
)

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                       reason="needs Debian's chromium and chromium-driver (make install)"),
    pytest.mark.skipif(not (OSD_DIR / "openseadragon.min.js").is_file(),
                       reason="OpenSeadragon not vendored: run 'make web-assets'"),
]


@pytest.fixture(scope="module")
def server(web_home: Path) -> Iterator[str]:
    """The viewer over the sample history, served by uvicorn on a free localhost port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(web_home), log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a fresh profile; skips when it cannot start."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    service = webdriver.ChromeService(executable_path=str(DRIVER))
    try:
        driver = webdriver.Chrome(options=options, service=service)
    except WebDriverException as exc:
        pytest.skip(f"chromium did not start: {str(exc).splitlines()[0]}")
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def shot(driver: webdriver.Chrome, tmp_path: Path, name: str) -> Path:
    """Save a screenshot under the test's temp folder (and $MONITOR_SCREENSHOTS)."""
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    extra = os.environ.get("MONITOR_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(extra) / f"viewer-{name}.png")
    return path


def load_ms(driver: webdriver.Chrome) -> float:
    """Navigation start to load event end, from the browser's Navigation Timing."""
    return float(driver.execute_script(
        "const t = performance.getEntriesByType('navigation')[0];"
        "return t.loadEventEnd - t.startTime;"
    ))


def test_artworks_and_timeline_pages(browser: webdriver.Chrome, server: str,
                                     tmp_path: Path) -> None:
    browser.get(server + "/")
    title_cell = browser.find_element(By.CSS_SELECTOR, "#artworks tbody td:nth-child(2)")
    assert "<script>" in title_cell.text  # shown as text, not run
    shot(browser, tmp_path, "artworks")
    browser.find_element(By.LINK_TEXT, "sample-canvas").click()
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "return [...document.images].every(i => i.complete)"))
    sizes = browser.execute_script("return [...document.images].map(i => i.naturalWidth)")
    assert len(sizes) == 3 and all(w > 0 for w in sizes)  # two thumbnails + the trend chart
    print(f"timeline page load: {load_ms(browser):.0f} ms")
    shot(browser, tmp_path, "timeline")
    browser.find_element(By.CSS_SELECTOR, "#comparisons a").click()
    WebDriverWait(browser, 60).until(
        lambda d: d.execute_script("return document.body.dataset.viewerReady === '1'"))


def _viewer_png(driver: webdriver.Chrome) -> np.ndarray:
    png = driver.find_element(By.ID, "viewer").screenshot_as_png
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def _settled(driver: webdriver.Chrome) -> None:
    """Wait until every tiled image is fully loaded and the viewport stopped moving."""
    WebDriverWait(driver, 30).until(lambda d: d.execute_script(
        "const v = window.monitorViewer; const w = v.world;"
        "for (let i = 0; i < w.getItemCount(); i++) if (!w.getItemAt(i).getFullyLoaded()) "
        "return false;"
        "const a = v.viewport.getBounds(true), b = v.viewport.getBounds(false);"
        "return Math.abs(a.x - b.x) + Math.abs(a.y - b.y) + Math.abs(a.width - b.width) < 1e-6;"
    ))
    time.sleep(0.3)


def test_comparison_page_swipe_overlay_regions(browser: webdriver.Chrome, server: str,
                                               tmp_path: Path) -> None:
    t0 = time.perf_counter()
    browser.get(server + "/comparisons/1")
    WebDriverWait(browser, 60).until(
        lambda d: d.execute_script("return document.body.dataset.viewerReady === '1'"))
    _settled(browser)
    print(f"comparison page: load event {load_ms(browser):.0f} ms, "
          f"all tiles shown {1000 * (time.perf_counter() - t0):.0f} ms")
    assert browser.execute_script("return window.monitorViewer.world.getItemCount()") == 3
    shot(browser, tmp_path, "comparison")

    # the viewer's own zoom control zooms (and "Whole painting" goes back)
    zoom = "return window.monitorViewer.viewport.getZoom()"
    home_zoom = browser.execute_script(zoom)
    browser.find_element(By.CSS_SELECTOR, "div[title='Zoom in']").click()
    _settled(browser)
    assert browser.execute_script(zoom) == pytest.approx(2 * home_zoom, rel=0.01)
    browser.find_element(By.ID, "home").click()
    _settled(browser)
    assert browser.execute_script(zoom) == pytest.approx(home_zoom, rel=0.01)

    # the swipe moves the clip of the current scan
    swipe = browser.find_element(By.ID, "swipe")
    width = browser.execute_script(
        "return window.monitorViewer.world.getItemAt(1).getContentSize().x")
    swipe.send_keys(Keys.HOME)
    assert browser.execute_script(
        "return window.monitorViewer.world.getItemAt(1).getClip().x") == 0
    swipe.send_keys(Keys.END)
    clip = browser.execute_script(
        "const c = window.monitorViewer.world.getItemAt(1).getClip(); return [c.x, c.width]")
    assert clip[0] == pytest.approx(width) and clip[1] == pytest.approx(0, abs=1e-6)
    for _ in range(200):
        swipe.send_keys(Keys.ARROW_LEFT)
    moved = browser.execute_script("return window.monitorViewer.world.getItemAt(1).getClip().x")
    assert moved == pytest.approx(0.8 * width, rel=1e-6)
    shot(browser, tmp_path, "comparison-swipe")

    # the opacity slider fades the heat map in and out: red/blue pixels appear and go
    opacity = browser.find_element(By.ID, "opacity")
    opacity.send_keys(Keys.HOME)
    _settled(browser)
    bare = _viewer_png(browser)
    opacity.send_keys(Keys.END)
    assert browser.execute_script(
        "return window.monitorViewer.world.getItemAt(2).getOpacity()") == 1
    _settled(browser)
    full = _viewer_png(browser)
    shot(browser, tmp_path, "comparison-overlay")

    opacity.send_keys(Keys.HOME)
    _settled(browser)
    again = _viewer_png(browser)

    def changed(a: np.ndarray, b: np.ndarray) -> int:
        return int((np.abs(a - b).sum(axis=2) > 60).sum())

    # full opacity recolours the regions (planted changes cover ~1 % of the view) ...
    assert changed(bare, full) > 0.002 * bare.shape[0] * bare.shape[1]
    # ... and opacity 0 brings the bare scans back
    assert changed(bare, again) < 0.05 * changed(bare, full)

    # clicking a region zooms the view onto it
    before = browser.execute_script(
        "const b = window.monitorViewer.viewport.getBounds(); return [b.x, b.y, b.width]")
    button = browser.find_elements(By.CSS_SELECTOR, "button.region")[0]
    bbox = [float(v) for v in button.get_attribute("data-bbox").split(",")]
    button.click()
    _settled(browser)
    after = browser.execute_script(
        "const v = window.monitorViewer; const b = v.viewport.getBounds();"
        "const c = v.world.getItemAt(0).viewportToImageRectangle(b);"
        "return [c.x, c.y, c.x + c.width, c.y + c.height, b.width]")
    assert after[4] < before[2] / 4  # zoomed in at least four times
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    assert after[0] < cx < after[2] and after[1] < cy < after[3]
    # zoomed in, the viewer fetched full-resolution tiles (and not every tile of the scan)
    levels = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => n.includes('/tiles/')).map(n => Number(n.split('/').slice(-2)[0]))")
    size = browser.execute_script(
        "const s = window.monitorViewer.world.getItemAt(0).getContentSize(); return [s.x, s.y]")
    assert max(levels) == max_level(int(size[0]), int(size[1]))
    shot(browser, tmp_path, "comparison-region")
