"""Outgoing-mail building blocks, measured: MIME build and DKIM signing rates.

    .venv/bin/python -m bench.mime      (about 16 s; BENCH_SECONDS, BENCH_ROUNDS to change)

Builds the same realistic message (HTML + text alternative, personalized subject and name,
one ~20 kB PDF-ish attachment) with lib/mime.py, with the stdlib EmailMessage under policy
SMTP, and with the compat32 MIMEMultipart classes; then signs it with lib/dkim.py and with
dkimpy's `dkim.sign` (same 2048-bit key, relaxed/relaxed).
"""

from __future__ import annotations

import email.policy
import os
import sys
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr

import dkim as dkimpy

from mailroom.lib import dkim, mime

NAMES = ["Zoë Martín", "Jean Dupont", "Łukasz Żółw", "Ana Lima", "李小龍", "Björn Ek"]
PDF = b"%PDF-1.4\n" + os.urandom(20_000) + b"\n%%EOF\n"
HTML = """<html><body><p>Dear {name},</p>
<p>Please find attached invoice <b>INV/2026/{n:05d}</b> for <b>1&nbsp;234,50&nbsp;€</b>,
due on 30 June 2026. You can also pay online by following the link below.</p>
<p><a href="https://acme.example/my/invoices/{n}?token=abcdef0123456789">View invoice</a></p>
<p>Best regards,<br>Acme Corp — Accounting</p></body></html>
"""
TEXT = """Dear {name},

Please find attached invoice INV/2026/{n:05d} for 1 234,50 €, due on 30 June 2026.
You can also pay online: https://acme.example/my/invoices/{n}?token=abcdef0123456789

Best regards,
Acme Corp — Accounting
"""
DATE = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)


def fields(n: int) -> dict:
    name = NAMES[n % len(NAMES)]
    return {
        "name": name, "addr": f"customer{n}@example.org",
        "subject": f"Invoice INV/2026/{n:05d} for {name} — 1 234,50 €",
        "html": HTML.format(name=name, n=n), "text": TEXT.format(name=name, n=n),
        "message_id": f"<{n}.bench@acme.example>",
    }


def build_mailroom(n: int) -> bytes:
    f = fields(n)
    return mime.build_message(
        from_addr=("Acme Corp — Accounting", "billing@acme.example"),
        to=[(f["name"], f["addr"])], subject=f["subject"], html=f["html"], text=f["text"],
        message_id=f["message_id"], date=DATE, headers={"Auto-Submitted": "auto-generated"},
        attachments=[mime.Attachment(f"INV_2026_{n:05d}.pdf", "application/pdf", PDF)],
    )


def build_stdlib_smtp(n: int) -> bytes:
    f = fields(n)
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["Date"] = format_datetime(DATE)
    msg["From"] = formataddr(("Acme Corp — Accounting", "billing@acme.example"))
    msg["To"] = formataddr((f["name"], f["addr"]))
    msg["Subject"] = f["subject"]
    msg["Message-ID"] = f["message_id"]
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(f["text"])
    msg.add_alternative(f["html"], subtype="html")
    msg.add_attachment(PDF, maintype="application", subtype="pdf",
                       filename=f"INV_2026_{n:05d}.pdf")
    return msg.as_bytes()


def build_compat32(n: int) -> bytes:
    f = fields(n)
    msg = MIMEMultipart("mixed")
    msg["Date"] = format_datetime(DATE)
    msg["From"] = formataddr(("Acme Corp — Accounting", "billing@acme.example"))
    msg["To"] = formataddr((f["name"], f["addr"]))
    msg["Subject"] = f["subject"]
    msg["Message-ID"] = f["message_id"]
    msg["Auto-Submitted"] = "auto-generated"
    alternative = MIMEMultipart("alternative")
    alternative.attach(MIMEText(f["text"], "plain", "utf-8"))
    alternative.attach(MIMEText(f["html"], "html", "utf-8"))
    msg.attach(alternative)
    part = MIMEApplication(PDF, "pdf")
    part.add_header("Content-Disposition", "attachment", filename=f"INV_2026_{n:05d}.pdf")
    msg.attach(part)
    return msg.as_bytes(policy=email.policy.compat32.clone(linesep="\r\n"))


def rate(func, seconds: float) -> float:
    func(0)  # warm up
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(20):
            func(count)
            count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main() -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "1"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    sample = build_mailroom(1)
    private_pem, _ = dkim.generate_key(2048)
    signer = dkim.DkimSigner("acme.example", "mail2026", private_pem)
    headers = [h.encode() for h in dkim.DEFAULT_HEADERS]
    cases = [
        ("MIME build: mailroom lib.mime", build_mailroom),
        ("MIME build: stdlib EmailMessage(policy=SMTP)", build_stdlib_smtp),
        ("MIME build: stdlib compat32 MIMEMultipart", build_compat32),
        ("DKIM sign: mailroom lib.dkim (cryptography)", lambda n: signer.sign(sample)),
        ("DKIM sign: dkimpy dkim.sign", lambda n: dkimpy.sign(
            sample, b"mail2026", b"acme.example", private_pem,
            canonicalize=(b"relaxed", b"relaxed"), include_headers=headers)),
    ]
    print(f"message: {len(sample):,} bytes (html + text + {len(PDF):,}-byte PDF); "
          f"{rounds} interleaved rounds of {seconds:g} s, best kept; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    best = dict.fromkeys((label for label, _ in cases), 0.0)
    for _ in range(rounds):  # interleaved, so a busy moment does not hit one row only
        for label, func in cases:
            best[label] = max(best[label], rate(func, seconds))
    ours_mime = best["MIME build: mailroom lib.mime"]
    ours_dkim = best["DKIM sign: mailroom lib.dkim (cryptography)"]
    print(f"{'what':<48} {'per second':>12} {'ours faster':>12}")
    for label, value in best.items():
        ours = ours_mime if label.startswith("MIME") else ours_dkim
        print(f"{label:<48} {value:>12,.0f} {ours / value:>11.1f}x")
    print(f"(one core, python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
