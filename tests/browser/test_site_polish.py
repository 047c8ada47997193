"""Site-wide polish in chromium: the API docs render whatever the OpenAPI document holds and
load nothing from elsewhere; 403/404 pages are styled, in the back-office frame when signed
in; the sidebar is open at 1280 px; the Home feed reads as text; the favicon is served."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from mailroom.api.site import api
from mailroom.chatter.services import post_message
from tests.browser.conftest import PHONE, WIDE

pytestmark = pytest.mark.browser

FORBIDDEN_FOR_BOB = reverse("admin:outgoing_mailserver_changelist")


def watch(page, live_server) -> dict[str, list[str]]:
    """Console errors, and every request that left the app (a CDN, say)."""
    seen: dict[str, list[str]] = {"console": [], "remote": []}
    page.on("console", lambda m: seen["console"].append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: seen["remote"].append(r.url)
            if not r.url.startswith((live_server.url, "data:", "blob:")) else None)
    return seen


def operation_count(document: dict) -> int:
    return sum(1 for item in document["paths"].values() for method in item
               if method in {"get", "post", "put", "patch", "delete"})


@pytest.fixture
def grown_document(monkeypatch):
    """The document as it may grow: a response listed twice, once under the integer 200 and
    once under "200" (json.dumps writes both keys). JSON allows it, YAML does not, and
    Swagger UI given the URL parses with YAML: "Parser error", no operations."""
    original = api.get_openapi_schema

    def grown(*args, **kwargs):
        schema = original(*args, **kwargs)
        first = next(iter(schema["paths"].values()))
        operation = next(iter(first.values()))
        operation["responses"] = {200: {"description": "OK"}, **operation["responses"]}
        return schema

    monkeypatch.setattr(api, "get_openapi_schema", grown)


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280", "390"])
def test_api_docs_render_every_operation_offline(open_page, alice, live_server, shot,
                                                 grown_document, viewport):
    text = Client().get("/api/openapi.json").content
    objects: list[list[str]] = []
    json.loads(text, object_pairs_hook=lambda pairs: objects.append([k for k, _ in pairs]))
    assert any(keys.count("200") == 2 for keys in objects)  # the document holds a key twice
    expected = operation_count(json.loads(text))
    assert expected > 20
    page = open_page(alice, viewport=viewport)
    seen = watch(page, live_server)
    page.goto("/api/docs")
    # building the document takes seconds on a busy machine: wait for it, not for a clock
    expect(page.locator(".opblock")).to_have_count(expected, timeout=60_000)
    expect(page.locator(".info .title")).to_contain_text("Mailroom API")
    expect(page.locator(".errors-wrapper")).to_have_count(0)
    expect(page.get_by_text("Parser error")).to_have_count(0)
    full = shot(page, "docs")
    page.screenshot(path=str(full.with_name(f"{full.stem}-top.png")))  # what a reader sees
    assert seen["console"] == []
    assert seen["remote"] == []
    for tag, attribute in (("script", "src"), ("link[rel=stylesheet]", "href")):
        for url in page.locator(tag).evaluate_all(f"els => els.map(e => e.{attribute})"):
            if url:
                assert url.startswith(live_server.url), url


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280", "390"])
def test_403_is_a_styled_page_in_the_back_office(open_page, bob, live_server, shot, viewport):
    page = open_page(bob, viewport=viewport)
    seen = watch(page, live_server)
    response = page.goto(FORBIDDEN_FOR_BOB)
    assert response.status == 403
    card = page.locator("#error-page")
    expect(card.locator("h1")).to_have_text("You may not open this page")
    expect(card).to_have_css("border-radius", "8px")  # errors.css loaded: styled, not bare
    expect(page.locator("#nav-sidebar")).to_have_count(1)  # the back-office frame
    expect(page.locator("#header-inner, header").first).to_be_visible()
    if viewport == WIDE:
        expect(page.locator("#nav-sidebar")).to_be_visible()
    expect(page.get_by_role("link", name="Go to Home")).to_have_attribute("href", "/")
    shot(page, "403")
    # chromium reports the page's own 403 status on the console; nothing else may be there
    assert [m for m in seen["console"] if "status of 403" not in m] == []


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280", "390"])
def test_404_signed_in_and_signed_out(open_page, alice, live_server, shot, viewport):
    page = open_page(alice, viewport=viewport)
    response = page.goto("/no-such-page/")
    assert response.status == 404
    expect(page.locator("#error-page h1")).to_have_text("Page not found")
    expect(page.locator("#error-page")).to_have_css("border-radius", "8px")
    expect(page.locator("#nav-sidebar")).to_have_count(1)
    shot(page, "404-signed-in")

    page = open_page(viewport=viewport)
    response = page.goto("/media/logos/no-such-logo.png")
    assert response.status == 404
    expect(page.locator("#error-page h1")).to_have_text("Page not found")
    expect(page.locator("#error-page")).to_have_css("border-radius", "8px")
    expect(page.locator("#nav-sidebar")).to_have_count(0)  # nobody signed in: no menu
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    shot(page, "404-signed-out")


def test_sidebar_is_open_at_1280_and_behind_the_menu_at_390(open_page, alice):
    page = open_page(alice, viewport=WIDE)
    page.goto("/")
    sidebar = page.locator("#nav-sidebar")
    expect(sidebar).to_be_visible()
    expect(sidebar.get_by_role("heading", name="Email")).to_be_visible()
    box = sidebar.bounding_box()
    main = page.locator("#main").bounding_box()
    assert box["x"] == 0 and main["x"] >= box["width"] - 1  # beside the content, not over it
    # closed by the user, it stays closed on the next page
    page.locator("#main [x-on\\:click='sidebarToggle()']").first.click()
    expect(sidebar).to_be_hidden()
    page.goto("/")
    expect(page.locator("#nav-sidebar")).to_be_hidden()

    phone = open_page(alice, viewport=PHONE)
    phone.goto("/")
    expect(phone.locator("#nav-sidebar")).to_be_hidden()


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280", "390"])
def test_home_feed_reads_as_text(open_page, alice, lead, shot, viewport):
    post_message(lead, actor=alice, notify=False,
                 body_html="<p>Price&nbsp;agreed</p><table><tr><td>Widgets</td>"
                           "<td>12</td></tr></table>")
    page = open_page(alice, viewport=viewport)
    page.goto("/")
    feed = page.locator("#mailroom-dashboard")
    expect(feed).to_contain_text("Price agreed")
    expect(feed).to_contain_text("Widgets | 12")  # cells apart, not "Widgets12"
    expect(feed).not_to_contain_text("&nbsp;")
    shot(page, "home")


@pytest.mark.parametrize("path", ["/", "/login/", "/api/docs", FORBIDDEN_FOR_BOB])
def test_favicon_is_linked_and_served(open_page, bob, path):
    page = open_page(bob if path != "/login/" else None)
    page.goto(path)
    href = page.locator("link[rel=icon]").first.get_attribute("href")
    assert href and href.endswith("mailroom/favicon.svg")
    response = page.request.get(href)
    assert response.status == 200 and "image/svg+xml" in response.headers["content-type"]
    assert b"<svg" in response.body()
