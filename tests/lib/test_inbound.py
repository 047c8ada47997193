"""lib/inbound.py: headers and bodies read right, hostile mail refused in time, never a crash."""

from __future__ import annotations

import base64
import email
import email.policy
import os
import tracemalloc
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formataddr

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailroom.lib import inbound, mime
from mailroom.lib.inbound import (
    HeaderTooLarge,
    InboundError,
    Limits,
    TooDeep,
    TooLarge,
    TooManyParts,
    TooSlow,
    parse_body,
    parse_head,
    split_head,
)

FUZZ = int(os.environ.get("MAILROOM_FUZZ", "1"))


def head(text: str | bytes) -> inbound.Head:
    return parse_head(text.encode() if isinstance(text, str) else text)


# -- split_head and header fields -----------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    (b"A: 1\r\nB: 2\r\n\r\nbody\r\n", (b"A: 1\r\nB: 2\r\n", b"body\r\n")),
    (b"A: 1\nB: 2\n\nbody\n\nmore", (b"A: 1\nB: 2\n", b"body\n\nmore")),
    (b"A: 1\nB: 2\n", (b"A: 1\nB: 2\n", b"")),  # no blank line: all header
    (b"\r\nbody", (b"", b"body")),
    (b"", (b"", b"")),
])
def test_split_head(raw, expected):
    assert split_head(raw) == expected


def test_folded_and_encoded_headers():
    h = head("Subject: =?utf-8?q?Caf=C3=A9?=\r\n =?utf-8?b?IGNyw6htZQ==?= and\r\n\tmore\r\n"
             "X-Thing: one\r\nx-thing: two\r\n\r\nbody")
    assert h.subject == "Café crème and\tmore"
    assert h.get("SUBJECT") == h.subject
    assert h.get("x-THING") == "one"
    assert h.get_all("X-Thing") == ["one", "two"]
    assert h.get("Missing") is None and h.get("Missing", "-") == "-"
    assert h.get_all("Missing") == []


def test_encoded_word_split_inside_a_character_still_reads():
    # "é" is C3 A9; one word ends after C3, the next starts with A9
    assert head("Subject: =?utf-8?q?caf=C3?= =?utf-8?q?=A9?=\n\n").subject == "café"


@pytest.mark.parametrize(("value", "expected"), [
    ("<abc@host>", "<abc@host>"),
    ("   <abc@host>   ", "<abc@host>"),
    ("abc@host", "<abc@host>"),
    ("<abc@host> (comment)", "<abc@host>"),
    ("<ab c@host>", "<abc@host>"),
    ("", ""),
    ("no id here", ""),
])
def test_message_id_normalized(value, expected):
    assert head(f"Message-ID: {value}\n\n").message_id == expected


def test_no_message_id():
    assert head("Subject: x\n\n").message_id == ""


def test_references_500_ids_keep_newest_100_in_order_deduplicated():
    ids = [f"<{n}@thread.example>" for n in range(500)]
    folded = "\r\n ".join(ids[:250] + ids[:10] + ids[250:])  # some repeated
    h = head(f"References: {folded}\r\nIn-Reply-To: <499@thread.example> <x@y>\r\n\r\n")
    assert h.references == ids[-100:]
    assert h.in_reply_to == ["<499@thread.example>", "<x@y>"]


@pytest.mark.parametrize(("value", "expected"), [
    ("undisclosed-recipients:;", []),
    ('"a@b" <c@d>', [("a@b", "c@d")]),
    ('group: a@b, "x" <y@z>;', [("", "a@b"), ("x", "y@z")]),
    ('group: a@b, "x" <y@z>;, after@example.com', [("", "a@b"), ("x", "y@z"),
                                                   ("", "after@example.com")]),
    ('"unbalanced <a@b>', [("", "a@b")]),
    ("Broken <a@b", [("Broken", "a@b")]),
    ("a@b, <c@d", [("", "a@b"), ("", "c@d")]),
    ("Joe (the boss) <Joe@Example.COM>", [("Joe", "Joe@example.com")]),
    ("joe@example.com (Joe Bloggs)", [("Joe Bloggs", "joe@example.com")]),
    ('"Doe, John" <j@x.org>, =?utf-8?q?Zo=C3=AB?= <z@x.org>',
     [("Doe, John", "j@x.org"), ("Zoë", "z@x.org")]),
    ("<@route.example:a@b.example>", [("", "a@b.example")]),
    ("<<<>>>, ;;; :: ((( ", []),
    ("", []),
    ("no address at all", []),
    ("x@", []),
    # the stdlib's folder can write the comma after an encoded-word as an encoded-word
    ("=?utf-8?b?MMKh?= <a@x.org>\n =?utf-8?q?=2C?= b@x.org, c@x.org",
     [("0¡", "a@x.org"), ("", "b@x.org"), ("", "c@x.org")]),
])
def test_odd_address_lists(value, expected):
    assert head(f"To: {value}\nCc: {value}\n\n").to == expected
    assert head(f"To: {value}\nCc: {value}\n\n").cc == expected


def test_from_sender_reply_to():
    h = head('From: "Alice A." <Alice@EXAMPLE.org>\nSender: list@Lists.Example\n'
             "Reply-To: a@x.org, b@x.org\n\n")
    assert (h.from_name, h.from_address) == ("Alice A.", "Alice@example.org")
    assert h.sender_address == "list@lists.example"
    assert h.reply_to == [("", "a@x.org"), ("", "b@x.org")]
    empty = head("Subject: x\n\n")
    assert (empty.from_name, empty.from_address, empty.sender_address) == ("", "", "")
    assert empty.to == [] and empty.reply_to == []


@pytest.mark.parametrize(("value", "expected"), [
    ("Mon, 1 Jun 2026 10:00:00 +0200", datetime(2026, 6, 1, 8, 0, tzinfo=UTC)),
    ("1 Jun 2026 10:00:00 -0000", datetime(2026, 6, 1, 10, 0, tzinfo=UTC)),
    ("Mon, 1 Jun 2026 10:00:00 GMT", datetime(2026, 6, 1, 10, 0, tzinfo=UTC)),
    ("yesterday", None),
    ("Mon, 99 Jun 2026 10:00:00 +0200", None),
    ("31 Dec 9999 23:59:59 -2359", None),  # past datetime.max in UTC
    ("", None),
])
def test_date(value, expected):
    assert head(f"Date: {value}\n\n").date == expected


def test_lf_only_and_no_blank_line():
    h = head("From: a@b.example\nTo: c@d.example\nSubject: hi")
    assert (h.from_address, h.to, h.subject) == ("a@b.example", [("", "c@d.example")], "hi")
    assert h.header_bytes == h.size == len("From: a@b.example\nTo: c@d.example\nSubject: hi")


def test_nul_bytes_and_garbage_lines_are_skipped():
    h = head(b"Subj\x00ect: bad name\nSubject: he\x00llo\nthis line is no header\n"
             b"To: a\x00@b.example\n\n")
    assert h.subject == "hello"
    assert h.to == [("", "a@b.example")]


def test_8bit_headers_utf8_and_latin1():
    h = head("Subject: Grüße aus Köln\nFrom: Zoë <zoe@example.org>\n\n".encode())
    assert (h.subject, h.from_name) == ("Grüße aus Köln", "Zoë")
    latin = head("Subject: Grüße\nFrom: Zoë <zoe@example.org>\n\n".encode("latin-1"))
    assert (latin.subject, latin.from_name) == ("Grüße", "Zoë")


def test_invalid_charsets_in_encoded_words():
    h = head("Subject: =?no-such-charset?q?caf=C3=A9?= =?idna?q?x?= =?rot13?q?y?="
             " =?utf-8?b?!!!broken?=\n\n")
    assert h.subject.startswith("caféxy")


def test_header_limits():
    with pytest.raises(HeaderTooLarge, match="headers are larger than 256 kB"):
        parse_head(b"X-Long: " + b"a" * 1024 * 1024 + b"\r\n\r\nbody")
    with pytest.raises(HeaderTooLarge, match="more than 1,000 header fields"):
        parse_head(b"X: 1\n" * 1001 + b"\n")
    with pytest.raises(TooLarge, match="limit is 1,000 bytes"):
        parse_head(b"X: 1\n\n" + b"a" * 1000, Limits(max_bytes=1000))
    assert parse_head(b"X: 1\n" * 1000 + b"\n").get("x") == "1"


def test_head_size_and_repr():
    raw = b"Message-ID: <a@b>\r\nSubject: s\r\n\r\nbody"
    h = parse_head(raw)
    assert (h.header_bytes, h.size) == (len(b"Message-ID: <a@b>\r\nSubject: s\r\n"), len(raw))
    assert "<a@b>" in repr(h)


# -- bodies ---------------------------------------------------------------------------------

NESTED = b"""From: a@b.example
Content-Type: multipart/mixed; boundary="mixed"

preamble is ignored
--mixed
Content-Type: multipart/related; boundary=rel

--rel
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Gr=FC=DFe, see the logo=
 below.
--alt
Content-Type: text/html; charset=utf-8

<p>Gr\xc3\xbc\xc3\x9fe <img src="cid:logo@x"></p>
--alt--
--rel
Content-Type: image/png; name="logo.png"
Content-ID: <logo@x>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--rel--
--mixed
Content-Type: message/rfc822
Content-Disposition: attachment

From: c@d.example
Subject: Original / message

inner body
--mixed
Content-Type: application/pdf
Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--mixed--
epilogue is ignored
"""


def test_nested_alternative_related_inline_image_and_rfc822():
    body = parse_body(NESTED)
    assert body.text == "Grüße, see the logo below."
    assert body.html == '<p>Grüße <img src="cid:logo@x"></p>'
    assert body.parts == 8
    logo, eml, pdf = body.attachments
    assert logo == inbound.Part("logo.png", "image/png", b"\x89PNG\r\n\x1a\n", "logo@x",
                                inline=True, dangerous=False)
    assert eml.filename == "Original message.eml" and eml.content_type == "message/rfc822"
    assert eml.data == b"From: c@d.example\nSubject: Original / message\n\ninner body"
    assert (eml.inline, eml.dangerous) == (False, False)
    assert (pdf.filename, pdf.data) == ("résumé.pdf", b"%PDF-1.4\n")


def test_crlf_message_from_the_builder_reads_back():
    raw = mime.build_message(
        from_addr=("Zoë", "zoe@example.org"), to=["a@example.com"], subject="Hi",
        message_id="<1@x>", text="Hello\nthere", html="<p>Hello</p>",
        attachments=[mime.Attachment("a.txt", "text/plain", b"attached"),
                     mime.Attachment("l.png", "image/png", b"PNG", content_id="l@x",
                                     inline=True)])
    body = parse_body(raw)
    assert (body.text, body.html) == ("Hello\r\nthere", "<p>Hello</p>")
    assert [(a.filename, a.data, a.inline, a.content_id) for a in body.attachments] == [
        ("l.png", b"PNG", True, "l@x"), ("a.txt", b"attached", False, "")]


def test_plain_message_and_charsets():
    assert parse_body(b"Subject: x\n\nhello\n") == inbound.Body("hello\n", "", [], 1)
    raw = b"Content-Type: text/plain; charset=no-such\n\ncaf\xc3\xa9 \xff"
    assert parse_body(raw).text == "café \ufffd"
    assert parse_body(b"Content-Type: text/plain\n\ncaf\xe9").text == "café"  # cp1252 guess
    assert parse_body(b"Content-Type: text/plain; charset=punycode\n\nabc-").text == "abc-"
    assert parse_body(b"Content-Type: text/html; charset=utf-16-le\n\n<\x00p\x00>\x00").html \
        == "<p>"
    assert parse_body(b"Subject: x\n\nnul\x00 bytes").text == "nul bytes"


def test_broken_base64_is_best_effort():
    raw = (b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
           b"SGVsbG8g!!d29y\nbGQ")
    assert parse_body(raw).attachments[0].data == b"Hello world"
    assert parse_body(raw.replace(b"bGQ", b"bGQx5")).attachments[0].data == b"Hello world1"


def test_multipart_without_boundary_or_parts_reads_as_text():
    assert parse_body(b"Content-Type: multipart/mixed\n\njust text").text == "just text"
    assert parse_body(b"Content-Type: multipart/mixed; boundary=b\n\nno parts").text \
        == "no parts"


def test_unclosed_multipart_and_headerless_part():
    raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nfirst\n--b\nno header\n"
    body = parse_body(raw)
    assert body.text == "first"
    assert body.attachments[0].data == b"no header\n"


@pytest.mark.parametrize(("filename", "content_type", "dangerous"), [
    ("invoice.pdf.exe", "application/octet-stream", True),
    ("x.JS", "application/octet-stream", True),
    ("evil.exe. ", "application/octet-stream", True),  # Windows drops trailing dots
    ("report.docm", "application/octet-stream", True),
    ("setup", "application/x-msdownload", True),
    ("mac.xlsm", "application/vnd.ms-excel.sheet.macroEnabled.12", True),
    ("disk.iso", "application/octet-stream", True),
    ("run.ps1", "text/plain", True),
    ("photo\u202egpj.exe", "image/jpeg", True),  # right-to-left override hides .exe
    ("notes.txt", "text/plain", False),
    ("archive.zip", "application/zip", False),  # flagged as nothing, never unpacked
    ("report.pdf", "application/pdf", False),
])
def test_dangerous_attachments_are_flagged(filename, content_type, dangerous):
    raw = (f"Content-Type: {content_type}\n"
           f'Content-Disposition: attachment; filename="{filename}"\n\ndata').encode()
    part = parse_body(raw).attachments[0]
    assert part.dangerous is dangerous
    assert part.data == b"data"


def test_attachment_names_lose_paths_and_control_characters():
    raw = (b"Content-Type: application/pdf\n"
           b'Content-Disposition: attachment; filename="..\\\\..\\\\evil\x07.pdf"\n\nx')
    assert parse_body(raw).attachments[0].filename == "evil.pdf"


# -- hostile mail ---------------------------------------------------------------------------


def _within(seconds: float, megabytes: float, func, *args):
    """Run `func` under a memory ceiling. `seconds` is the time budget the parser enforces
    itself (TooSlow, see test_time_budget); the test does not time it on a loaded machine."""
    tracemalloc.start()
    try:
        return func(*args)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < megabytes * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_ten_thousand_parts():
    raw = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
           + b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 10_000 + b"--b--\r\n")
    with pytest.raises(TooManyParts, match="more than 1,000 parts"):
        _within(1.0, 50, parse_body, raw)
    assert parse_body(raw, Limits(max_parts=20_000)).parts == 10_001


def test_thousand_deep_nesting():
    raw = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (n, n)
                   for n in range(1000)) + b"\r\nleaf\r\n"
    with pytest.raises(TooDeep, match="more than 30 levels"):
        _within(1.0, 50, parse_body, raw)


def test_megabyte_header_line():
    raw = b"Subject: " + b"x" * 1024 * 1024 + b"\r\n\r\nbody"
    with pytest.raises(HeaderTooLarge):
        _within(1.0, 50, parse_head, raw)
    with pytest.raises(HeaderTooLarge):
        _within(1.0, 50, parse_body, raw)
    part = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nX: " + b"y" * 300_000 + b"\n\n"
    with pytest.raises(HeaderTooLarge):
        _within(1.0, 50, parse_body, part)
    # a part whose first line is no header has no header block: its body is not refused
    text = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nplain " + b"z" * 300_000
    assert len(parse_body(text).text) == 300_006


def test_junk_base64_and_odd_attached_message():
    raw = (b"Content-Type: application/x\nContent-Transfer-Encoding: base64\n\n"
           + b"!A" * 10_000_000)
    assert len(_within(1.0, 80, parse_body, raw).attachments[0].data) == 7_500_000
    eml = b"Content-Type: message/rfc822\n\n" + b"X: 1\n" * 2000 + b"\nbody"
    assert parse_body(eml).attachments[0].filename == "message.eml"


def test_time_budget():
    raw = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
           + b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 500 + b"--b--\r\n")
    with pytest.raises(TooSlow, match="longer than 0 seconds"):
        parse_body(raw, Limits(max_seconds=0.0))


def test_size_limit_and_errors_are_value_errors():
    with pytest.raises(TooLarge) as caught:
        parse_body(b"x" * 101, Limits(max_bytes=100))
    assert isinstance(caught.value, ValueError)
    assert str(caught.value) == "The message is 101 bytes; the limit is 100 bytes."


# -- properties -----------------------------------------------------------------------------

FAST = settings(max_examples=150 * FUZZ, deadline=1000,
                suppress_health_check=[HealthCheck.too_slow])
PIECES = st.sampled_from([
    b"\r\n", b"\n", b"\r", b"\n\n", b"\r\n\r\n", b" ", b"\t", b"\0", b":", b";", b",", b'"',
    b"<", b">", b"(", b")", b"\\", b"@", b"=?", b"?=", b"=?utf-8?b?", b"=?x?q?=C3", b"--b",
    b"--b--", b"\xff", b"\xc3\xa9", b"From: ", b"To: g: a@b, <c@d>;", b"Subject: ",
    b"Content-Type: multipart/mixed; boundary=b\n", b"Content-Type: text/plain; charset=",
    b"Content-Type: message/rfc822\n", b"Content-Transfer-Encoding: base64\n",
    b"Content-Transfer-Encoding: quoted-printable\n", b"filename*0*=utf-8''%C3", b"name=",
    b"Date: ", b"Mon, 1 Jun 2026 10:00 +0200", b"References: <a@b>", b"Message-ID: ",
    b"Content-Disposition: attachment; filename=", b"Content-ID: <x>",
])
broken = st.lists(st.one_of(PIECES, st.binary(max_size=8)), max_size=80).map(b"".join)


def _only_inbound_errors(raw: bytes) -> None:
    for func in (parse_head, parse_body):
        try:
            result = func(raw)
        except InboundError as error:
            assert str(error)
        else:
            if func is parse_head:  # every property reads without raising
                for name in ("message_id", "in_reply_to", "references", "subject",
                             "from_name", "from_address", "sender_address", "reply_to",
                             "to", "cc", "date"):
                    getattr(result, name)


@FAST
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_give_a_result_or_a_typed_error(raw):
    _only_inbound_errors(raw)


@FAST
@given(broken)
def test_structured_but_broken_messages_give_a_result_or_a_typed_error(raw):
    _only_inbound_errors(raw)


NAME_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp"))
names = st.one_of(st.just(""), st.text(NAME_CHARS, min_size=1, max_size=30)
                  .map(lambda s: " ".join(s.split())).filter(bool))
addrs = st.from_regex(r"[a-z0-9]{1,6}([._+-][a-z0-9]{1,4}){0,2}@[a-z0-9]{1,8}\.(com|org|example)",
                      fullmatch=True)
mailboxes = st.tuples(names, addrs)
subjects = st.text(NAME_CHARS, max_size=120).map(lambda s: " ".join(s.split()))


def _oracle(raw: bytes):
    msg = email.message_from_bytes(raw, policy=email.policy.default)

    def pairs(name):
        header = msg[name]
        return [(a.display_name, a.addr_spec.rpartition("@")[0] + "@"
                 + a.addr_spec.rpartition("@")[2].lower()) for a in header.addresses]

    return str(msg["subject"]).strip(), pairs("from")[0], pairs("to"), str(msg["message-id"])


@settings(max_examples=100 * FUZZ, deadline=None)
@given(subjects, mailboxes, st.lists(mailboxes, min_size=1, max_size=4),
       st.integers(0, 10**9), st.booleans())
def test_well_formed_headers_read_as_the_stdlib_reads_them(subject, sender, to, n, builder):
    message_id = f"<{n}.x@host.example>"
    if builder:
        raw = mime.build_message(from_addr=sender, to=list(to), subject=subject, text="x",
                                 message_id=message_id)
    else:
        msg = EmailMessage(policy=email.policy.default)
        msg["Subject"], msg["From"] = subject, formataddr(sender)
        # one address: with several, the stdlib's folder sometimes writes the comma between
        # them as an encoded-word and then loses an address reading its own output
        msg["To"] = formataddr(to[0])
        msg["Message-ID"] = message_id
        msg.set_content("x")
        raw = msg.as_bytes()
    h = parse_head(raw)
    ours = (h.subject, (h.from_name, h.from_address), h.to, h.message_id)
    oracle = _oracle(raw)
    if ours != oracle and b"?=\n =?" in raw:
        # The one known difference: the stdlib puts a space between adjacent encoded-words
        # in a display name (RFC 2047 6.2 says to drop it; lib/mime.py's docstring has more).
        # Everything but that space must still agree.
        def squeeze(value):
            return repr(value).replace(" ", "")
        assert squeeze(ours) == squeeze(oracle)
    else:
        assert ours == oracle


def test_adjacent_encoded_words_in_a_name_join_without_a_space():
    h = head("From: =?utf-8?q?Zo=C3=AB?=\n =?utf-8?q?_Mart=C3=ADn?= <z@x.org>\n\n")
    assert (h.from_name, h.from_address) == ("Zoë Martín", "z@x.org")


def test_base64_helper_never_raises_on_any_length():
    for n in range(12):
        data = base64.b64encode(os.urandom(n))
        for cut in range(len(data) + 1):
            inbound.fields_.lenient_b64decode(data[:cut])
