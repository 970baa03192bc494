"""Screenshot the viewer's comparison page in headless Chromium (for the README).

Usage::

    python scripts/viewer_screenshot.py --home demo_out/home --out docs/images/viewer.png

Serves the home with uvicorn on a free localhost port, opens the latest
comparison of the first artwork, waits for every tile, and saves the page.
Needs Debian's chromium and chromium-driver, and ``make web-assets``.
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

from monitor.store import db, repository
from monitor.web import create_app

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,900")
READY = (
    "const v = window.monitorViewer; if (!v || document.body.dataset.viewerReady !== '1') "
    "return false; const w = v.world; for (let i = 0; i < w.getItemCount(); i++) "
    "if (!w.getItemAt(i).getFullyLoaded()) return false; return true;"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    store = db.open_store(db.resolve_home(args.home))
    slug = repository.list_artworks(store)[0].slug
    cid = repository.latest_comparison_id(store, slug)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(args.home), log_level="warning"))
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
        # an explicit driver: Selenium Manager (which would go online) is not used
        service = webdriver.ChromeService(executable_path=shutil.which("chromedriver")
                                          or "/usr/bin/chromedriver")
        driver = webdriver.Chrome(options=options, service=service)
        try:
            driver.get(f"http://127.0.0.1:{sock.getsockname()[1]}/comparisons/{cid}")
            WebDriverWait(driver, 120).until(lambda d: d.execute_script(READY))
            time.sleep(0.5)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.out))
        finally:
            driver.quit()
    server.should_exit = True
    thread.join(timeout=10)
    print(f"wrote {args.out} (comparison {cid} of {slug})")


if __name__ == "__main__":
    main()
