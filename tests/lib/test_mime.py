"""lib/mime.py proven against the stdlib parser: whatever goes in comes back out exactly."""

from __future__ import annotations

import email
import email.policy
import os
import re
from datetime import datetime, timedelta, timezone

import idna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailroom.lib import mime
from mailroom.lib.mime import Attachment, HeaderInjection, build_message

# MAILROOM_FUZZ=40 multiplies the examples for a long local hunt; the default keeps CI fast.
FUZZ = int(os.environ.get("MAILROOM_FUZZ", "1"))

# -- strategies -----------------------------------------------------------------------------

ANY_CHAR = st.characters(exclude_categories=("Cs",))  # lone surrogates cannot be UTF-8
HEADER_CHAR = st.characters(exclude_categories=("Cs",), exclude_characters="\r\n\0")
SCRIPTS = st.sampled_from(
    list("aZ09 ,;:\"'\\<>()[]@.=?_-é€ß") + ["😀", "👩‍👩‍👧", "你好", "世界", "שלום", "مرحبا", "ÿ",
                                          "\u200f", "\u0301", "\t", "=?", "?=", "  "]
)
header_text = st.one_of(
    st.text(HEADER_CHAR, max_size=120),
    st.lists(SCRIPTS, max_size=60).map("".join),
    st.text(st.sampled_from("ab "), min_size=70, max_size=300),  # long, foldable ASCII
    st.text(st.sampled_from("xyz"), min_size=70, max_size=200),  # long, no space at all
)
# display names: as above, kept within the length real names have (see module docstring)
display_names = st.one_of(
    st.text(HEADER_CHAR, max_size=80),
    st.lists(SCRIPTS, max_size=30).map("".join),
)
LOCAL = st.from_regex(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,12}(\.[A-Za-z0-9_+-]{1,8}){0,2}",
                      fullmatch=True)
DOMAIN = st.sampled_from(
    ["example.com", "sub.example.org", "bücher.example", "例え.テスト", "παράδειγμα.δοκιμή",
     "xn--bcher-kva.example", "EXAMPLE.NET"]
)
addr_specs = st.builds(lambda local, domain: f"{local}@{domain}", LOCAL, DOMAIN)
addresses = st.tuples(display_names, addr_specs)

LINE = st.one_of(
    st.text(ANY_CHAR, max_size=40),
    st.sampled_from(["From here", "From", ".", "..", ".hidden", "--", "=_x", "=", "   ", "\t",
                     "trailing  ", "=?utf-8?q?x?=", ""]),
    st.text(st.sampled_from("ab é"), min_size=70, max_size=1200),  # long lines
    st.text(st.sampled_from("x"), min_size=990, max_size=1100),
)
bodies = st.one_of(
    st.text(ANY_CHAR, max_size=300),
    st.builds(lambda lines, nl: nl.join(lines), st.lists(LINE, max_size=8),
              st.sampled_from(["\n", "\r\n", "\r"])),
    st.sampled_from(["", "\r", "\n", "\r\n", "\r\r", "\n\n", "x", ".", "From x\n"]),
)
filenames = st.one_of(
    st.text(HEADER_CHAR, min_size=1, max_size=80).filter(lambda s: s.strip() == s and s),
    st.sampled_from(["résumé.pdf", "報告書.docx", "a b;c=d\"e\\.txt", "x" * 150 + ".bin",
                     "😀" * 30, "%41.txt", "=?utf-8?q?x?=.txt"]),
)
attachments = st.builds(
    Attachment,
    name=filenames,
    mimetype=st.sampled_from(["application/pdf", "image/png", "text/csv",
                              "application/octet-stream", "bogus type"]),
    data=st.binary(max_size=3000),
    content_id=st.one_of(st.none(), st.from_regex(r"[a-z0-9.]{1,20}@x", fullmatch=True)),
    inline=st.booleans(),
)


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def nl(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def one_line(name: str) -> str:
    """Display names are one line by design: space/control runs to one space, ends trimmed."""
    return re.sub(r"[\s\x00-\x1f\x7f]+", " ", name).strip(" ")


def ascii_address(addr: str) -> str:
    local, domain = addr.rsplit("@", 1)
    return f"{local}@{idna.encode(domain, uts46=True).decode() if not domain.isascii() else domain}"


def assert_wire_format(raw: bytes) -> None:
    assert b"\r" not in raw.replace(b"\r\n", b"") and b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert raw.isascii()
    assert not re.search(rb"^From ", raw, re.M), "an mbox 'From ' line would be munged"


def assert_no_defects(msg) -> None:
    for part in msg.walk():
        assert not part.defects, (part.get_content_type(), part.defects)
        for name, value in part.items():
            assert not getattr(value, "defects", ()), (name, value.defects)


def names_and_addresses(header) -> list[tuple[str, str]]:
    return [(a.display_name, a.addr_spec) for a in header.addresses]


# -- properties -----------------------------------------------------------------------------


@settings(max_examples=250 * FUZZ, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    subject=header_text,
    sender=addresses,
    to=st.lists(addresses, max_size=4),
    cc=st.lists(addresses, max_size=2),
    text=st.one_of(st.none(), bodies),
    html=st.one_of(st.none(), bodies),
    files=st.lists(attachments, max_size=3),
    extra=st.one_of(st.none(), header_text),
)
def test_round_trip_through_the_stdlib_parser(subject, sender, to, cc, text, html, files,
                                              extra):
    headers = {"X-Mailroom-Note": extra} if extra is not None else {}
    raw = build_message(from_addr=sender, to=to, cc=cc, subject=subject, text=text, html=html,
                        message_id="<abc.123@mailroom.test>", date=None, headers=headers,
                        attachments=files)
    assert_wire_format(raw)
    msg = parse(raw)
    assert_no_defects(msg)

    assert msg["subject"] == subject
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.startswith(b"Subject:"):
            assert len(line) <= 78
    if extra is not None:
        assert msg["x-mailroom-note"] == extra
    assert names_and_addresses(msg["from"]) == [(one_line(sender[0]), ascii_address(sender[1]))]
    if to:
        assert names_and_addresses(msg["to"]) == [(one_line(n), ascii_address(a)) for n, a in to]
    else:
        assert msg["to"] == "undisclosed-recipients:;"
    if cc:
        assert names_and_addresses(msg["cc"]) == [(one_line(n), ascii_address(a)) for n, a in cc]
    assert msg["message-id"] == "<abc.123@mailroom.test>"
    assert msg["bcc"] is None

    inline_images = html is not None and any(f.inline and f.content_id for f in files)
    if text is not None or html is None:
        assert nl(msg.get_body(("plain",)).get_content()) == nl(text or "")
    if html is not None:
        body = msg.get_body(("related", "html")) if inline_images else msg.get_body(("html",))
        if inline_images:
            assert body.get_content_type() == "multipart/related"
            body = next(body.iter_parts())
        assert nl(body.get_content()) == nl(html)

    found = sorted(
        (part.get_filename(), part.get_payload(decode=True), str(part["content-id"]))
        for part in msg.walk()
        if part.get("content-disposition")
    )
    expected = sorted(
        (f.name, f.data, f"<{f.content_id}>" if f.content_id else "None") for f in files
    )
    assert found == expected


@settings(max_examples=150 * FUZZ, deadline=None)
@given(name=display_names, addr=addr_specs)
def test_format_address_round_trips(name, addr):
    raw = f"To: {mime.format_address(name, addr)}\r\n\r\n".encode("ascii")
    msg = parse(raw)
    assert_no_defects(msg)
    assert names_and_addresses(msg["to"]) == [(one_line(name), ascii_address(addr))]


# -- units ----------------------------------------------------------------------------------

BASE = dict(from_addr=("Acme", "hello@acme.test"), to=[("Bob", "bob@example.test")],
            subject="Hello", text="Hi\n", html=None, message_id="<1@acme.test>")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"subject": "Hello\r\nBcc: victim@example.test"}, "Subject"),
        ({"subject": "Hello\nX: y"}, "Subject"),
        ({"subject": "Hello\0"}, "Subject"),
        ({"from_addr": ("Acme\r\nBcc: x@y.z", "hello@acme.test")}, "From"),
        ({"from_addr": "hello@acme.test\r\nBcc: x@y.z"}, "From"),
        ({"to": [("Bob", "bob@example.test\nBcc: x@y.z")]}, "To"),
        ({"cc": [("Bob\r", "bob@example.test")]}, "Cc"),
        ({"reply_to": ("R", "r@x.test\r\n")}, "Reply-To"),
        ({"message_id": "<1@acme.test>\r\nBcc: x@y.z"}, "Message-ID"),
        ({"headers": {"X-Tag": "a\r\nBcc: x@y.z"}}, "X-Tag"),
        ({"headers": {"X-Tag\r\nBcc": "v"}}, "header name 'X-Tag\\r\\nBcc'"),
        ({"attachments": [Attachment("a\r\n.pdf", "application/pdf", b"")]},
         "attachment 1 name"),
        ({"attachments": [Attachment("a.pdf", "application/pdf\r\nX: y", b"")]},
         "attachment 1 mimetype"),
        ({"attachments": [Attachment("a.png", "image/png", b"", content_id="x\n@y")]},
         "attachment 1 content_id"),
    ],
)
def test_header_injection_is_refused_naming_the_field(changes, field):
    with pytest.raises(HeaderInjection) as info:
        build_message(**{**BASE, **changes})
    assert info.value.field == field
    assert field in str(info.value)
    assert isinstance(info.value, ValueError)


def test_bcc_never_appears():
    raw = build_message(**BASE)
    assert b"bcc" not in raw.lower()
    for name in ("Bcc", "bcc", "BCC"):
        with pytest.raises(ValueError, match="set by the builder"):
            build_message(**{**BASE, "headers": {name: "spy@example.test"}})


@pytest.mark.parametrize("name", ["From", "subject", "Content-Type", "Message-ID", "To"])
def test_managed_headers_cannot_be_overridden(name):
    with pytest.raises(ValueError, match="set by the builder"):
        build_message(**{**BASE, "headers": {name: "x"}})


@pytest.mark.parametrize("name", ["Bad Name", "X:Y", "", "Ünï"])
def test_invalid_header_names_are_refused(name):
    with pytest.raises(ValueError, match="not a valid header name"):
        build_message(**{**BASE, "headers": {name: "x"}})


def test_plain_ascii_text_is_7bit_and_readable():
    raw = build_message(**{**BASE, "text": "Hello Bob,\n\nYour invoice is attached.\n"})
    assert b"Content-Transfer-Encoding: 7bit" in raw
    assert raw.endswith(b"\r\n\r\nHello Bob,\r\n\r\nYour invoice is attached.\r\n")
    assert b"Subject: Hello\r\n" in raw
    assert b"From: Acme <hello@acme.test>\r\n" in raw


def test_encodings_chosen_by_content():
    latin = build_message(**{**BASE, "text": "Grüße aus Köln\n"})
    assert b"Content-Transfer-Encoding: quoted-printable" in latin
    cjk = build_message(**{**BASE, "text": "你好世界，这是一封测试邮件。\n" * 3})
    assert b"Content-Transfer-Encoding: base64" in cjk


def test_structure_with_inline_images_and_attachments():
    raw = build_message(**{
        **BASE, "html": '<img src="cid:logo@acme">', "attachments": [
            Attachment("logo.png", "image/png", b"\x89PNG", content_id="logo@acme", inline=True),
            Attachment("facture n°1.pdf", "application/pdf", b"%PDF"),
        ]})
    msg = parse(raw)
    structure = [part.get_content_type() for part in msg.walk()]
    assert structure == ["multipart/mixed", "multipart/alternative", "text/plain",
                         "multipart/related", "text/html", "image/png", "application/pdf"]
    assert b"filename*=utf-8''facture%20n%C2%B01.pdf" in raw
    boundaries = re.findall(rb'boundary="([^"]+)"', raw)
    assert len(set(boundaries)) == 3
    assert all(b.startswith(b"=_") for b in boundaries)


def test_inline_image_without_html_becomes_an_attachment():
    raw = build_message(**{**BASE, "attachments": [
        Attachment("logo.png", "image/png", b"x", content_id="logo@acme", inline=True)]})
    msg = parse(raw)
    assert [p.get_content_type() for p in msg.walk()] == ["multipart/mixed", "text/plain",
                                                           "image/png"]


def test_idn_domain_is_punycode_and_smtputf8_keeps_utf8():
    assert mime.format_address("Jöhn", "john@bücher.example") == (
        "=?utf-8?q?J=C3=B6hn?= <john@xn--bcher-kva.example>")
    assert mime.encode_address("JOHN@Bücher.Example") == "JOHN@xn--bcher-kva.example"
    assert mime.encode_address("x@[192.0.2.1]") == "x@[192.0.2.1]"
    with pytest.raises(mime.UnencodableAddress, match="SMTPUTF8"):
        mime.format_address("", "jöhn@example.test")
    raw = build_message(**{**BASE, "to": [("Jö", "jöhn@bücher.example")], "smtputf8": True})
    assert "To: =?utf-8?q?J=C3=B6?= <jöhn@bücher.example>".encode() in raw
    msg = email.message_from_bytes(raw, policy=email.policy.SMTPUTF8)
    assert msg["to"].addresses[0].domain.encode("utf-8", "surrogateescape").decode() \
        == "bücher.example"


def test_the_ascii_copy_writes_a_utf8_local_part_as_an_encoded_group():
    """For servers without SMTPUTF8: ASCII headers that still name every recipient."""
    with pytest.raises(mime.UnencodableAddress, match="SMTPUTF8"):
        build_message(**{**BASE, "to": [("Jö", "jöhn@bücher.example"), "ann@example.test"]})
    raw = build_message(**{**BASE, "to": [("Jö", "jöhn@bücher.example"), "ann@example.test"],
                           "downgrade": True})
    assert raw.isascii()
    to = email.message_from_bytes(raw, policy=email.policy.default)["to"]
    assert not to.defects
    assert [g.display_name for g in to.groups] == ["Jö <jöhn@bücher.example>", None]
    assert [a.addr_spec for a in to.addresses] == ["ann@example.test"]
    # an ASCII local part needs no downgrading, and a bad domain is still refused
    assert b"To: ann@xn--bcher-kva.example\r\n" in build_message(
        **{**BASE, "to": ["ann@bücher.example"], "downgrade": True})
    with pytest.raises(mime.UnencodableAddress):
        build_message(**{**BASE, "to": ["jöhn@exa mple.test"], "downgrade": True})


@pytest.mark.parametrize("addr", ["no-at-sign", "@example.test", "x@", "x@bad..idn.ü",
                                  "x@exa mple.test", "x@a..b", "x@-a.test", "x@a.test>"])
def test_invalid_addresses_are_refused(addr):
    with pytest.raises(mime.UnencodableAddress):
        mime.encode_address(addr)


def test_quoted_local_parts():
    assert mime.encode_address("john doe@example.test") == '"john doe"@example.test'
    assert mime.encode_address('"john doe"@example.test') == '"john doe"@example.test'
    msg = parse(b"To: " + mime.format_address("J", 'a"b@x.test').encode() + b"\r\n\r\n")
    assert msg["to"].addresses[0].username == 'a"b'


def test_a_name_too_long_for_one_line_is_split_within_the_line_limit():
    raw = build_message(**{**BASE, "to": [("名" * 400, "a@b.test")]})
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert parse(raw)["to"].addresses[0].addr_spec == "a@b.test"


def test_date_header():
    naive = datetime(2026, 3, 1, 12, 0)
    assert b"Date: Sun, 01 Mar 2026 12:00:00 +0000\r\n" in build_message(**BASE, date=naive)
    paris = datetime(2026, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert b"Date: Sun, 01 Mar 2026 13:00:00 +0100\r\n" in build_message(**BASE, date=paris)
    assert parse(build_message(**BASE))["date"].datetime.tzinfo is not None


def test_message_id_is_required_in_shape():
    assert b"Message-ID: <x@y>\r\n" in build_message(**{**BASE, "message_id": "x@y"})
    for bad in ("no-domain", "<a b@c>", "<é@c>"):
        with pytest.raises(ValueError, match="Message-ID"):
            build_message(**{**BASE, "message_id": bad})


def test_long_ascii_custom_header_folds_at_spaces():
    value = " ".join(f"<https://acme.test/unsubscribe/{i}>" for i in range(6))
    raw = build_message(**{**BASE, "headers": {"List-Unsubscribe": value}})
    lines = [line for line in raw.split(b"\r\n\r\n")[0].split(b"\r\n")]
    assert all(len(line) <= 78 for line in lines)
    assert parse(raw)["list-unsubscribe"] == value


def test_message_size():
    raw = build_message(**BASE)
    assert mime.message_size(raw) == len(raw)
