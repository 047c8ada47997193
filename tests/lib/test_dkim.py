"""lib/dkim.py: every signature must verify with dkimpy, and tampering must break it."""

from __future__ import annotations

import base64
import functools
import re

import dkim as dkimpy
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailroom.lib import dkim
from mailroom.lib.mime import Attachment, build_message
from tests.lib.test_mime import FUZZ, addresses, attachments, bodies, header_text


@functools.cache
def key() -> tuple[bytes, str]:
    return dkim.generate_key(2048)


@functools.cache
def signer() -> dkim.DkimSigner:
    return dkim.DkimSigner("acme.example", "mail2026", key()[0])


def dns(name: bytes, timeout: int = 5) -> bytes:
    assert name == b"mail2026._domainkey.acme.example."
    return key()[1].encode("ascii")


def verifies(message: bytes) -> bool:
    return dkimpy.verify(message, dnsfunc=dns)


def tamper_body(signed: bytes) -> bytes:
    head, sep, body = signed.partition(b"\r\n\r\n")
    if not sep:  # no body at all
        return signed + b"\r\ntampered\r\n"
    return head + sep + (body[:-3] + b"X" + body[-2:] if len(body) > 3 else b"tampered\r\n")


@settings(max_examples=60 * FUZZ, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=header_text, sender=addresses, to=st.lists(addresses, min_size=1, max_size=3),
       text=st.one_of(st.none(), bodies), html=st.one_of(st.none(), bodies),
       files=st.lists(attachments, max_size=2), auto=st.booleans())
def test_messages_from_the_builder_verify_with_dkimpy(subject, sender, to, text, html, files,
                                                      auto):
    message = build_message(
        from_addr=sender, to=to, subject=subject, text=text, html=html, message_id="<1@acme>",
        headers={"Auto-Submitted": "auto-generated"} if auto else {}, attachments=files,
        reply_to=("Support", "support@acme.example"),
    )
    signed = signer().sign(message)
    assert signed.endswith(message)
    assert verifies(signed)
    assert not verifies(tamper_body(signed))


HAND_WRITTEN = [
    # folded headers, odd spacing, tabs, trailing whitespace in headers and body
    b"From: Alice\r\n  <alice@acme.example>\r\nTo:\tbob@example.test  \r\n"
    b"Subject:   a   folded\r\n\t subject  \r\nDate: Mon, 1 Jun 2026 09:00:00 +0000\r\n"
    b"\r\nHello  \t world \r\n\r\n \r\n\t\r\n",
    # empty body, with and without the blank line
    b"From: a@acme.example\r\nSubject: empty\r\n\r\n",
    b"From: a@acme.example\r\nSubject: no body at all\r\n",
    # body without a final CRLF, only blank lines, a lone dot and "From " lines
    b"From: a@acme.example\r\n\r\nno final newline",
    b"From: a@acme.example\r\n\r\n\r\n\r\n\r\n",
    b"From: a@acme.example\r\n\r\n.\r\nFrom here\r\n..\r\n",
    # repeated headers are signed bottom-up; header names in any case
    b"FROM: a@acme.example\r\nTo: one@x.test\r\nto: two@x.test\r\nsUbJeCt:x\r\n"
    b"Received: by relay\r\n\r\nbody\r\n",
    # non-ASCII bytes in the body (8bit)
    "From: a@acme.example\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGrüße 😀\r\n"
    .encode(),
]


@pytest.mark.parametrize("message", HAND_WRITTEN)
def test_hand_written_messages_verify(message):
    signed = signer().sign(message)
    assert verifies(signed)
    assert not verifies(tamper_body(signed))


def test_bare_lf_messages_are_normalized_and_signed_as_sent():
    message = b"From: a@acme.example\nSubject: unix\n\nline one \nline two\r\n"
    signed = signer().sign(message)
    assert b"\n" not in signed.replace(b"\r\n", b"")
    assert signed.endswith(b"Subject: unix\r\n\r\nline one \r\nline two\r\n")
    assert verifies(signed)


def test_changed_or_added_signed_headers_fail():
    message = build_message(from_addr="a@acme.example", to=["b@x.test"], subject="Invoice",
                            text="Pay 10 EUR\n", message_id="<1@acme>")
    signed = signer().sign(message)
    assert not verifies(signed.replace(b"Subject: Invoice", b"Subject: Invoicf"))
    # oversigning: a second From or Subject added on top breaks the signature
    assert not verifies(b"From: evil@attacker.test\r\n" + signed)
    header, rest = signed.split(b"\r\nDate:", 1)
    assert not verifies(header + b"\r\nSubject: Urgent\r\nDate:" + rest)
    # headers that are not signed can be added by relays
    assert verifies(b"Received: from relay by mx; Mon, 1 Jun 2026 09:00:00 +0000\r\n" + signed)


def test_signature_header_shape():
    message = build_message(from_addr="a@acme.example", to=["b@x.test"], subject="Hi",
                            text="x\n", message_id="<1@acme>")
    header = signer().signature_header(message, timestamp=1_780_000_000)
    assert header.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
                             b" d=acme.example; s=mail2026; t=1780000000;\r\n h=from:from:to:to")
    assert header.endswith(b"\r\n")
    assert all(len(line) <= 78 for line in header.split(b"\r\n"))
    assert b" l=" not in header and b"; l=" not in header
    # RSA PKCS#1 v1.5 is deterministic: same message and time, same signature
    assert header == signer().signature_header(message, timestamp=1_780_000_000)
    # the body hash agrees with dkimpy's own relaxed canonicalization
    theirs = dkimpy.sign(message, b"mail2026", b"acme.example", key()[0],
                         canonicalize=(b"relaxed", b"relaxed"))
    bh = re.compile(rb"bh=([A-Za-z0-9+/=]+)")
    assert bh.search(header).group(1) == bh.search(theirs).group(1)


def test_canonicalization_units():
    assert dkim.canonicalize_body(b"") == b""
    assert dkim.canonicalize_body(b"\r\n\r\n") == b""
    assert dkim.canonicalize_body(b" a \t b  \r\n\r\n") == b" a b\r\n"
    assert dkim.canonicalize_body(b"x") == b"x\r\n"
    assert dkim.canonicalize_header(b"SubJect ", b"  a\r\n \t b  ") == b"subject:a b\r\n"


def test_generated_key_and_dns_record():
    pem, txt = key()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert txt.startswith("v=DKIM1; k=rsa; p=")
    der = base64.b64decode(txt.split("p=", 1)[1])
    public = serialization.load_der_public_key(der)
    assert public.key_size == 2048
    assert dkim.dns_txt_value(pem) == txt
    pieces = dkim.dns_txt_strings(txt)
    assert "".join(pieces) == txt and all(len(p) <= 255 for p in pieces) and len(pieces) == 2
    assert dkim.dns_record_name("mail2026", "acme.example") == "mail2026._domainkey.acme.example"
    with pytest.raises(ValueError):
        dkim.generate_key(512)


def test_signer_refuses_bad_configuration():
    pem = key()[0]
    for domain, selector in [("acme.example", "bad selector"), ("acme example", "s"),
                             ("acme.example\r\n", "s"), ("", "s")]:
        with pytest.raises(ValueError):
            dkim.DkimSigner(domain, selector, pem)
    with pytest.raises(ValueError, match="From"):
        dkim.DkimSigner("acme.example", "s", pem, headers=("subject",))
    ed = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with pytest.raises(ValueError, match="RSA"):
        dkim.DkimSigner("acme.example", "s", ed)
    # a str PEM works as well as bytes
    assert dkim.DkimSigner("ACME.example", "s", pem.decode()).domain == "acme.example"


def test_without_oversigning_only_present_headers_are_listed():
    quiet = dkim.DkimSigner("acme.example", "mail2026", key()[0], oversign=False)
    message = build_message(from_addr="a@acme.example", to=["b@x.test"], subject="Hi",
                            text="x\n", message_id="<1@acme>",
                            attachments=[Attachment("a.bin", "application/octet-stream", b"")])
    signed = quiet.sign(message)
    h = re.search(rb"h=([^;]+);", signed).group(1).replace(b"\r\n ", b"")
    assert h == b"from:to:subject:date:message-id:mime-version:content-type"
    assert verifies(signed)


def test_one_click_unsubscribe_headers_are_signed():
    """RFC 8058: List-Unsubscribe and List-Unsubscribe-Post must be covered by the DKIM
    signature, or a receiver ignores the one-click unsubscribe."""
    message = build_message(
        from_addr="a@acme.example", to=["b@x.test"], subject="Weekly pulse", text="x\n",
        message_id="<1@acme>", headers={
            "List-Unsubscribe": "<https://mail.acme.example/digests/unsubscribe/abc/>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": '"Weekly pulse" <digest-1.acme.example>'})
    signed = signer().sign(message)
    h = re.search(rb"h=([^;]+);", signed.replace(b"\r\n ", b"")).group(1).decode()
    assert {"list-unsubscribe", "list-unsubscribe-post", "list-id"} <= set(h.split(":"))
    assert verifies(signed)
    assert not verifies(signed.replace(b"digests/unsubscribe/abc/", b"evil.test/abc/"))
    assert not verifies(b"List-Unsubscribe: <https://evil.test/>\r\n" + signed)
