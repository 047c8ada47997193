"""A mixed inbound corpus: new requests to aliases (plain, HTML with a PDF), replies with
References, replies whose client dropped them (subject only), delivery reports to the VERP
address, and out-of-office auto-replies — roughly what a company's aliases receive."""

from __future__ import annotations

import base64
from email.utils import formatdate

PDF = base64.encodebytes(b"%PDF-1.4\n" + b"0" * 6000).decode()


def _crlf(text: str) -> bytes:
    """SMTP lines end in CRLF; the gateway refuses bare LF (smuggling protection)."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def _new(n: int, domain: str) -> tuple[str, list[str], bytes]:
    alias = ("sales", "support", "jobs")[n % 3]
    sender = f"person{n}@prospect{n % 97}.example"
    head = [f"From: Person {n} <{sender}>", f"To: {alias}@{domain}",
            f"Subject: Request number {n}", f"Date: {formatdate()}",
            f"Message-ID: <new-{n}@prospect.example>", "MIME-Version: 1.0"]
    if n % 4:
        body = ["Content-Type: text/plain; charset=utf-8", "",
                f"Hello,\n\nplease call me back about request {n}.\n\nThanks"]
    else:
        body = ['Content-Type: multipart/mixed; boundary="b"', "", "--b",
                "Content-Type: text/html; charset=utf-8", "",
                f"<html><body><p>Hello,</p><p>see the attached brief <b>{n}</b>.</p>"
                "</body></html>", "--b", "Content-Type: application/pdf; name=brief.pdf",
                "Content-Disposition: attachment; filename=brief.pdf",
                "Content-Transfer-Encoding: base64", "", PDF, "--b--"]
    return sender, [f"{alias}@{domain}"], _crlf("\r\n".join(head + body))


def _reply(n: int, sent, domain: str, *, drop_references: bool) -> tuple:
    mail_id, message_id, _ = sent[n % len(sent)]
    index = n % len(sent)
    sender = f"customer{index}@client.example"
    head = [f"From: Customer {index} <{sender}>", f"To: sales@{domain}",
            f"Subject: RE: Your quote {index}", f"Date: {formatdate()}",
            f"Message-ID: <reply-{n}@client.example>"]
    if not drop_references:
        head += [f"In-Reply-To: {message_id}", f"References: {message_id}"]
    body = ["Content-Type: text/plain; charset=utf-8", "", "Thanks, looks good.\n\n> Here."]
    return sender, [f"sales@{domain}"], _crlf("\r\n".join(head + body))


def _bounce(n: int, sent, domain: str) -> tuple:
    from mailroom.core.tokens import bounce_key
    from mailroom.lib import verp

    mail_id, message_id, recipient_id = sent[n % len(sent)]
    index = n % len(sent)
    envelope = verp.make_bounce_address(mail_id=mail_id, recipient_id=recipient_id,
                                        domain=domain, key=bounce_key())
    raw = "\r\n".join([
        "From: MAILER-DAEMON@mx.client.example (Mail Delivery System)", f"To: {envelope}",
        "Subject: Undelivered Mail Returned to Sender", f"Date: {formatdate()}",
        f"Message-ID: <dsn-{n}@mx.client.example>", "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"', "",
        "--r", "Content-Type: text/plain", "", "I'm sorry to have to inform you...", "--r",
        "Content-Type: message/delivery-status", "", "Reporting-MTA: dns; mx.client.example",
        "", f"Final-Recipient: rfc822; customer{index}@client.example", "Action: failed",
        "Status: 5.1.1", "Diagnostic-Code: smtp; 550 5.1.1 User unknown", "", "--r",
        "Content-Type: text/rfc822-headers", "", f"Message-ID: {message_id}",
        "Subject: Your quote", "", "--r--", ""])
    return "", [envelope], _crlf(raw)


def _auto_reply(n: int, sent, domain: str) -> tuple:
    _, message_id, _ = sent[n % len(sent)]
    index = n % len(sent)
    sender = f"customer{index}@client.example"
    raw = "\r\n".join([
        f"From: {sender}", f"To: sales@{domain}", f"Subject: Out of office: Your quote {index}",
        f"Date: {formatdate()}", f"Message-ID: <ooo-{n}@client.example>",
        "Auto-Submitted: auto-replied", f"In-Reply-To: {message_id}",
        "Content-Type: text/plain", "", "I am away until Monday.", ""])
    return sender, [f"sales@{domain}"], _crlf(raw)


def corpus(count: int, sent, domain: str) -> list[tuple[str, list[str], bytes]]:
    """`count` messages: 50% new, 20% replies, 5% subject-only replies, 10% bounces,
    15% auto-replies — interleaved as they would arrive."""
    items = []
    for n in range(count):
        slot = n % 20
        if slot < 10:
            items.append(_new(n, domain))
        elif slot < 14:
            items.append(_reply(n, sent, domain, drop_references=False))
        elif slot < 15:
            items.append(_reply(n, sent, domain, drop_references=True))
        elif slot < 17:
            items.append(_bounce(n, sent, domain))
        else:
            items.append(_auto_reply(n, sent, domain))
    return items
