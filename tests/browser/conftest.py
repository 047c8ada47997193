"""Browser fixtures: Debian's chromium driven by Playwright against pytest-django's live server.

The browser lives for this package only: Playwright's sync API keeps an event loop in the test
thread, which makes Django refuse ORM calls from it ("async context"), so the fixtures allow
them while the browser is open and put the rule back afterwards.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM = os.environ.get("MAILROOM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
WIDE = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="package")
def browser():
    from playwright.sync_api import expect

    # the suite runs on both cores beside PostgreSQL and chromium: an htmx round trip can
    # take longer than expect()'s 5 s default under that load (actions already wait 10 s)
    expect.set_options(timeout=15_000)
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).exists()):
        pytest.fail(f"chromium not found at {CHROMIUM}: run ./scripts/test, which installs it")
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                  args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()


@pytest.fixture
def open_page(browser, live_server, transactional_db):
    """`open_page(user=None, viewport=WIDE)`: a fresh browser context, signed in as `user`
    (by session cookie, the login form has its own test). JavaScript errors fail the test."""
    from django.conf import settings
    from django.test import Client

    contexts = []
    errors: list[str] = []

    def _open(user=None, viewport=WIDE):
        context = browser.new_context(viewport=viewport, base_url=live_server.url,
                                      accept_downloads=True)
        context.set_default_timeout(10_000)
        if user is not None:
            client = Client()
            client.force_login(user)
            context.add_cookies([{
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }])
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield _open
    for context in contexts:
        context.close()
    _wait_for_requests(live_server)
    assert not errors, f"JavaScript errors: {errors}"


def _wait_for_requests(live_server, timeout: float = 10.0, quiet: float = 0.3) -> None:
    """Let the requests a closed page left in flight (a poll every second) finish before the
    database is flushed: on SQLite the live server shares the test's connection, and a flush
    meeting a request half-way fails with "database table is locked" (and the next test then
    finds the last one's rows). A request the server accepts a moment after the page closed
    gets its thread only then, so this waits until no request has run for `quiet` seconds."""
    httpd = getattr(getattr(live_server, "thread", None), "httpd", None)
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        threads = getattr(httpd, "_threads", None)  # socketserver's list; a stub before any
        running = [t for t in (list(threads) if isinstance(threads, list) else [])
                   if t.is_alive()]
        if running:
            for thread in running:
                thread.join(max(0.0, deadline - time.monotonic()))
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet:
            return
        else:
            time.sleep(0.05)


@pytest.fixture
def shot(request):
    """`shot(page, name)` saves a full-page screenshot to artifacts/ for inspection."""
    ARTIFACTS.mkdir(exist_ok=True)

    def _shot(page, name: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return _shot
