"""Time the viewer's comparison page over a data home: server side, then in headless Chromium.

Usage::

    python bench/web_page.py --home HOME [--fresh]

``--fresh`` deletes ``HOME/cache/web`` first, so the first request builds the
three pyramids (baseline, resampled current, change overlay). Then the page
is opened in headless Chromium (Debian's chromium + chromium-driver) served by
uvicorn on a free localhost port: the load event, and the time until every
tile in view is drawn.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from selenium import webdriver
from selenium.webdriver.support.ui import WebDriverWait
from starlette.testclient import TestClient

from monitor.store import db, repository
from monitor.web import create_app

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000")
DRAWN = (
    "const v = window.monitorViewer; if (!v || document.body.dataset.viewerReady !== '1') "
    "return false; const w = v.world; for (let i = 0; i < w.getItemCount(); i++) "
    "if (!w.getItemAt(i).getFullyLoaded()) return false; return true;"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--fresh", action="store_true", help="drop the tile cache first")
    args = parser.parse_args()
    store = db.open_store(db.resolve_home(args.home))
    slug = repository.list_artworks(store)[0].slug
    cid = repository.latest_comparison_id(store, slug)
    detail = repository.comparison_detail(store, cid)
    print(f"comparison {cid} of {slug}: {detail.baseline.width} x {detail.baseline.height}")
    if args.fresh:
        shutil.rmtree(args.home / "cache" / "web", ignore_errors=True)
    app = create_app(args.home)
    client = TestClient(app)
    for label in ("first request (builds tiles)" if args.fresh else "first request",
                  "second request"):
        t0 = time.perf_counter()
        assert client.get(f"/comparisons/{cid}").status_code == 200
        print(f"  server, {label}: {time.perf_counter() - t0:.2f} s")

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in FLAGS:
        options.add_argument(flag)
    with tempfile.TemporaryDirectory() as profile:
        options.add_argument(f"--user-data-dir={profile}")
        service = webdriver.ChromeService(
            executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
        driver = webdriver.Chrome(options=options, service=service)
        try:
            t0 = time.perf_counter()
            driver.get(f"http://127.0.0.1:{sock.getsockname()[1]}/comparisons/{cid}")
            load = driver.execute_script(
                "const t = performance.getEntriesByType('navigation')[0];"
                "return t.loadEventEnd - t.startTime;")
            WebDriverWait(driver, 300, poll_frequency=0.05).until(lambda d: d.execute_script(DRAWN))
            drawn = time.perf_counter() - t0
            n_tiles = driver.execute_script(
                "return performance.getEntriesByType('resource')"
                ".filter(e => e.name.includes('/tiles/')).length")
            kib = driver.execute_script(
                "return performance.getEntriesByType('resource').filter(e => "
                "e.name.includes('/tiles/')).reduce((s, e) => s + e.transferSize, 0) / 1024")
        finally:
            driver.quit()
    server.should_exit = True
    thread.join(timeout=10)
    print(f"  browser: load event {load:.0f} ms, every tile in view drawn {1000 * drawn:.0f} ms "
          f"({n_tiles} tiles, {kib:.0f} KiB)")


if __name__ == "__main__":
    main()
