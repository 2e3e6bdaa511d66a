"""Browser fixtures: Debian's chromium, driven by Playwright (sync API), against live_server.

The browser is /usr/bin/chromium (`apt-get install chromium`), not a Playwright download.
When it is missing the browser tests are skipped on a laptop, and fail under CI (CI set).
"""

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connections

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Screenshots go to test-output/ at the repository root (git-ignored).
OUTPUT_DIR = Path(__file__).resolve().parents[2] / "test-output"


@pytest.fixture
def chromium_path() -> str:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)."
        if os.environ.get("CI"):
            pytest.fail(f"{reason} Browser tests may not be skipped under CI.")
        pytest.skip(reason)
    return str(CHROMIUM)


@pytest.fixture
def page(chromium_path: str, live_server) -> Iterator:
    """A fresh browser page; `live_server.url` is the site under test.

    Playwright's sync API keeps an asyncio loop in this thread, which makes Django refuse
    ORM calls from test code; DJANGO_ALLOW_ASYNC_UNSAFE lifts that for the test's length.
    """
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(10_000)
            yield context.new_page()
            context.close()
            browser.close()
            # Django keeps connections per context, and ORM calls made in here got their
            # own: close it, or the test database cannot be dropped at the end.
            connections.close_all()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def screenshot(request, page) -> Callable[[], Path]:
    """Call it to save a full-page screenshot as test-output/<test name>.png."""

    def take() -> Path:
        OUTPUT_DIR.mkdir(exist_ok=True)
        path = OUTPUT_DIR / f"{request.node.name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
