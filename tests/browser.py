"""Headless Chromium for the browser tests (Debian's `chromium` package, driven by Playwright).

Playwright's own browser download is never used: the tests launch the system Chromium. Without it
the browser tests skip with the reason, unless `SEQREC_REQUIRE_BROWSER=1` (CI sets it), which
makes a missing browser a failure.
"""
import os
import shutil
import socket
import threading
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "_site_build" / "screenshots"


def chromium_path() -> str | None:
    return os.environ.get("SEQREC_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def require_browser() -> str:
    "The Chromium executable; skips (or fails under SEQREC_REQUIRE_BROWSER=1) when it or Playwright is missing."
    missing = []
    if not chromium_path(): missing.append("Chromium (apt-get install chromium)")
    try: import playwright  # noqa: F401
    except ImportError: missing.append("playwright (pip install -e '.[dev]')")
    if missing:
        msg = "browser test needs " + " and ".join(missing)
        if os.environ.get("SEQREC_REQUIRE_BROWSER"): pytest.fail(msg)
        pytest.skip(msg)
    return chromium_path()


@contextmanager
def chromium():
    "A headless Chromium browser for the duration of the block."
    from playwright.sync_api import sync_playwright
    exe = require_browser()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=FLAGS)
        try: yield browser
        finally: browser.close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


@contextmanager
def serve(folder: Path):
    "Serve `folder` over HTTP on 127.0.0.1 (a free port) and yield its base URL."
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try: yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown(); server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PageProblems:
    "Collects what a reader would notice going wrong on a page: console errors, script errors, failed requests."

    def __init__(self, page):
        self.items = []
        page.on("console", lambda m: self.items.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.items.append(f"script error: {e}"))
        page.on("requestfailed", lambda r: self.items.append(f"request failed: {r.url} ({r.failure})"))
        page.on("response", lambda r: self.items.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
