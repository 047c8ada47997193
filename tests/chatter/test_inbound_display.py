"""Incoming email in the chatter: its HTML in a sandboxed iframe served under a strict CSP
(no remote images until asked, nothing that runs), dangerous attachments flagged and only
ever downloaded, inline images shown in place."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse

from mailroom.chatter import services
from mailroom.chatter.models import Attachment, Message

PIXEL = "https://tracker.example/p.gif?u=42"
GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
       b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def incoming(lead) -> Message:
    return services.post_message(
        lead, actor=None, message_type=Message.Type.EMAIL, direction=Message.Direction.INCOMING,
        subject="Your offer", author_name="Ada Lovelace", email_from="ada@client.example",
        body_html=f'<p>Hello <b>team</b></p><img src="{PIXEL}" width="1" height="1">'
                  '<script>alert(1)</script><a href="javascript:alert(2)" onclick="x()">x</a>')


def body_url(message: Message) -> str:
    return reverse("chatter:message_body", args=[message.pk])


def panel_html(client, record) -> str:
    content_type = ContentType.objects.get_for_model(record)
    response = client.get(reverse("chatter:panel", args=[content_type.pk, record.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_incoming_email_renders_in_a_sandboxed_iframe(bob, lead, incoming):
    html = panel_html(client_for(bob), lead)
    frame = re.search(r"<iframe[^>]*chatter-email-iframe[^>]*>", html, re.S).group(0)
    assert 'sandbox=""' in frame
    assert f'src="{body_url(incoming)}"' in frame
    assert f'data-images-src="{body_url(incoming)}?images=1"' in frame
    assert "Show remote images" in html
    # the body itself is not in the page: the tracker cannot load from the panel
    assert PIXEL not in html and "tracker.example" not in html


def test_outgoing_messages_and_notes_stay_inline(bob, lead):
    services.post_message(lead, actor=bob, body_text="Internal remark",
                          message_type=Message.Type.NOTE)
    html = panel_html(client_for(bob), lead)
    assert "Internal remark" in html and "chatter-email-iframe" not in html


def test_no_button_without_remote_images(bob, lead):
    message = services.post_message(
        lead, actor=None, message_type=Message.Type.EMAIL, direction=Message.Direction.INCOMING,
        body_html='<p>Plain</p><img src="data:image/gif;base64,R0lGOD">')
    html = panel_html(client_for(bob), lead)
    assert body_url(message) in html and "Show remote images" not in html


def test_body_is_served_under_a_strict_policy(bob, incoming):
    response = client_for(bob).get(body_url(incoming))
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert csp.startswith("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:;")
    assert "https:" not in csp and "script-src" not in csp  # nothing remote, nothing runs
    assert "frame-ancestors 'self'" in csp
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "no-referrer"
    body = response.content.decode()
    assert "<b>team</b>" in body and PIXEL.replace("&", "&amp;") in body
    assert "<script" not in body and "javascript:" not in body and "onclick" not in body


def test_remote_images_only_when_asked(bob, incoming):
    response = client_for(bob).get(body_url(incoming), {"images": "1"})
    assert response.status_code == 200
    img_src = re.search(r"img-src ([^;]*)", response["Content-Security-Policy"]).group(1)
    assert img_src.split()[:3] == ["'self'", "data:", "https:"]
    assert "default-src 'none'" in response["Content-Security-Policy"]
    secure = client_for(bob).get(body_url(incoming), {"images": "1"}, secure=True)
    assert re.search(r"img-src ([^;]*)", secure["Content-Security-Policy"]).group(1) == (
        "'self' data: https:")


def test_another_companys_user_gets_404(charlie, dana, incoming):
    assert client_for(charlie).get(body_url(incoming)).status_code == 404
    assert client_for(dana).get(body_url(incoming)).status_code == 200  # member of acme
    assert client_for(charlie).get(reverse("chatter:message_body", args=[999999])
                                   ).status_code == 404


def test_signed_out_is_sent_to_login(incoming):
    response = Client().get(body_url(incoming))
    assert response.status_code == 302 and "/login/" in response["Location"]


def _attachment(lead, name: str, data: bytes, mimetype: str, *, dangerous=False,
                danger: str = "") -> Attachment:
    attachment = services.store_attachment(lead, actor=None, name=name,
                                           stream=io.BytesIO(data), mimetype=mimetype)
    if dangerous:
        Attachment.objects.filter(pk=attachment.pk).update(is_dangerous=True, danger=danger)
        attachment.refresh_from_db()
    return attachment


def test_the_warning_says_why_the_router_flagged_the_file(bob, lead):
    archive = _attachment(lead, "Scan_0042.rar", b"Rar!\x1a\x07\x01\x00", "application/vnd.rar",
                          dangerous=True, danger="the archive Scan_0042.rar holds Scan.pdf.exe")
    services.post_message(lead, actor=None, message_type=Message.Type.EMAIL,
                          direction=Message.Direction.INCOMING, body_html="<p>Scan</p>",
                          attachments=[archive])
    html = panel_html(client_for(bob), lead)
    assert ("The archive Scan_0042.rar holds Scan.pdf.exe: open it only if you trust the "
            "sender") in html


def test_dangerous_attachment_is_flagged_and_only_downloaded(bob, lead):
    attachment = _attachment(lead, "invoice.pdf.exe", b"MZ\x90\x00", "image/png",
                             dangerous=True)
    services.post_message(lead, actor=None, message_type=Message.Type.EMAIL,
                          direction=Message.Direction.INCOMING, body_html="<p>See attached</p>",
                          attachments=[attachment])
    client = client_for(bob)
    html = panel_html(client, lead)
    assert "This file type can run code: open it only if you trust the sender" in html
    assert "chatter-chip--danger" in html
    url = reverse("chatter:download", args=[attachment.pk])
    for query in ("", "?inline=1"):  # even claiming to be an image, asked inline
        response = client.get(url + query)
        assert response.status_code == 200
        assert response["Content-Disposition"].startswith("attachment")
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Type"] == "application/octet-stream"


def test_inline_image_is_served_inline_only_when_safe(bob, lead):
    client = client_for(bob)
    image = _attachment(lead, "logo.gif", GIF, "image/gif")
    inline = client.get(reverse("chatter:download", args=[image.pk]) + "?inline=1")
    assert inline.status_code == 200
    assert inline["Content-Disposition"].startswith("inline")
    assert inline["Content-Type"] == "image/gif"
    assert inline["X-Content-Type-Options"] == "nosniff"
    assert b"".join(inline.streaming_content) == GIF
    plain = client.get(reverse("chatter:download", args=[image.pk]))
    assert plain["Content-Disposition"].startswith("attachment")
    svg = _attachment(lead, "logo.svg", b"<svg onload='alert(1)'/>", "image/svg+xml")
    svg_inline = client.get(reverse("chatter:download", args=[svg.pk]) + "?inline=1")
    assert svg_inline["Content-Disposition"].startswith("attachment")
    assert svg_inline["Content-Type"] == "application/octet-stream"
    pdf = _attachment(lead, "doc.pdf", b"%PDF-1.4", "application/pdf")
    pdf_inline = client.get(reverse("chatter:download", args=[pdf.pk]) + "?inline=1")
    assert pdf_inline["Content-Disposition"].startswith("attachment")


def test_inline_images_are_embedded_in_the_body(bob, lead, globex_lead):
    image = _attachment(lead, "logo.gif", GIF, "image/gif")
    foreign = _attachment(globex_lead, "their.gif", GIF, "image/gif")
    bad = _attachment(lead, "x.gif", GIF, "image/gif", dangerous=True)
    urls = [reverse("chatter:download", args=[a.pk]) + "?inline=1" for a in (image, foreign, bad)]
    message = services.post_message(
        lead, actor=None, message_type=Message.Type.EMAIL, direction=Message.Direction.INCOMING,
        body_html="".join(f'<img alt="{n}" src="{u}">' for n, u in zip("abc", urls, strict=True)))
    body = client_for(bob).get(body_url(message)).content.decode()
    assert 'alt="a" src="data:image/gif;base64,R0lGODlh' in body
    assert f'src="{urls[1]}"' in body and f'src="{urls[2]}"' in body  # left alone
