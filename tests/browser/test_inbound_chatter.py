"""An incoming HTML email in a real browser: its tracking pixel (served by a tiny HTTP server in
the test) is not fetched until the reader clicks "Show remote images"; its cid: image, stored
as an attachment, shows at once."""

from __future__ import annotations

import io
import os
import re
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.browser

GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
       b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


@pytest.fixture
def tracker():
    """A loopback HTTP server answering /pixel.gif and counting who asked."""
    hits: list[str] = []

    class Pixel(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/gif")
            self.send_header("Content-Length", str(len(GIF)))
            self.end_headers()
            self.wfile.write(GIF)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pixel)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], hits
    server.shutdown()
    server.server_close()


def wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_remote_pixel_waits_for_show_remote_images(open_page, bob, lead, tracker, shot):
    from mailroom.chatter import services
    from mailroom.chatter.models import Message

    port, hits = tracker
    logo = services.store_attachment(lead, actor=None, name="logo.gif", stream=io.BytesIO(GIF),
                                     mimetype="image/gif")
    inline_url = reverse("chatter:download", args=[logo.pk]) + "?inline=1"
    message = services.post_message(
        lead, actor=None, message_type=Message.Type.EMAIL, direction=Message.Direction.INCOMING,
        subject="Quarterly offer", author_name="Ada Lovelace", email_from="ada@client.example",
        body_html=f'<h2 style="color:#1d4ed8">Our offer</h2><p>Dear team, see below.</p>'
                  f'<p><img alt="logo" src="{inline_url}" width="40" height="40"></p>'
                  f'<img alt="" src="http://127.0.0.1:{port}/pixel.gif" width="1" height="1">')

    page = open_page(bob)
    statuses: dict[str, int] = {}
    page.on("response", lambda r: statuses.__setitem__(r.url.split("//", 1)[1]
                                                       .split("/", 1)[1], r.status))
    page.goto(reverse("admin:crm_lead_change", args=[lead.pk]))
    frame_element = page.locator(f"#chatter-message-{message.pk} iframe.chatter-email-iframe")
    expect(frame_element).to_have_attribute("sandbox", "")
    frame = page.frame_locator(f"#chatter-message-{message.pk} iframe.chatter-email-iframe")
    expect(frame.locator("h2")).to_have_text("Our offer")
    # our own inline image is embedded (the opaque-origin frame gets no session cookie, so
    # the download URL itself would answer a login redirect); the tracker is never asked
    expect(frame.locator("img[alt=logo]")).to_have_attribute("src", re.compile(r"^data:image/gif;"))
    expect(frame.locator("img[alt=logo]")).to_have_js_property("naturalWidth", 1)
    assert not any(k.startswith("chatter/attachments/") for k in statuses), statuses
    time.sleep(0.5)
    assert hits == []
    shot(page, "blocked")

    button = page.get_by_role("button", name="Show remote images")
    expect(button).to_be_visible()
    button.click()
    expect(button).to_have_count(0)
    expect(frame.locator("h2")).to_have_text("Our offer")
    assert wait_for(lambda: hits == ["/pixel.gif"]), hits
    path = shot(page, "images-shown")
    artifacts = os.environ.get("MAILROOM_ARTIFACTS")
    if artifacts and Path(artifacts).resolve() != ARTIFACTS.resolve():
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(artifacts) / path.name)


@pytest.mark.parametrize("viewport", ["wide", "phone"])
def test_a_flagged_archive_says_why_on_the_record(open_page, bob, lead, viewport):
    from mailroom.chatter import services
    from mailroom.chatter.models import Attachment, Message
    from tests.browser.conftest import PHONE, WIDE

    archive = services.store_attachment(lead, actor=None, name="Remittance_8812.7z",
                                        stream=io.BytesIO(b"7z\xbc\xaf\x27\x1c"),
                                        mimetype="application/x-7z-compressed")
    why = ("the archive Remittance_8812.7z holds Remittance.zip, which holds "
           "Payment_Advice_8812.pdf.js")
    Attachment.objects.filter(pk=archive.pk).update(is_dangerous=True, danger=why)
    archive.refresh_from_db()
    message = services.post_message(
        lead, actor=None, message_type=Message.Type.EMAIL,
        direction=Message.Direction.INCOMING, subject="Remittance advice",
        author_name="Payments Team", email_from="remittance@pay.example",
        body_html="<p>The remittance advice is attached.</p>", attachments=[archive])
    size = PHONE if viewport == "phone" else WIDE
    page = open_page(bob, viewport=size)
    page.goto(reverse("admin:crm_lead_change", args=[lead.pk]))
    posted = page.locator(f"#chatter-message-{message.pk}")
    warning = posted.get_by_role("note")
    expect(warning).to_have_text(
        "The archive Remittance_8812.7z holds Remittance.zip, which holds "
        "Payment_Advice_8812.pdf.js: open it only if you trust the sender.")
    expect(posted.locator(".chatter-chip--danger")).to_contain_text("Remittance_8812.7z")
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    ARTIFACTS.mkdir(exist_ok=True)  # the screen as read (the save bar sticks over a full page)
    warning.evaluate("note => note.scrollIntoView({block: 'center'})")
    page.screenshot(path=str(ARTIFACTS / f"flagged-archive-{viewport}.png"))
