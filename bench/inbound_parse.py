"""Inbound parsing, measured: lib/inbound.py against the stdlib parser on a mixed corpus.

    .venv/bin/python -m bench.inbound_parse     (about 40 s; BENCH_SECONDS, BENCH_ROUNDS)

The corpus is ~2,000 generated messages: plain text, HTML + text, with a ~40 kB attachment,
replies carrying In-Reply-To and 10-40 References, and DSN bounces (multipart/report). Every
row reads the same routing fields (Message-ID, From, To, Cc, Subject, References), because
policy.default parses a header only when it is read; "full parse" rows parse the whole MIME
tree as the router would have to without lib/inbound.
"""

from __future__ import annotations

import email
import email.policy
import os
import random
import sys
import time

from mailroom.lib import inbound, mime

NAMES = ["Zoë Martín", "Jean Dupont", "Łukasz Żółw", "Ana Lima", "李小龍", "Björn Ek"]
TEXT = "Hello {name},\n\nThanks for your order #{n}. " + "Lorem ipsum dolor sit amet. " * 20
HTML = "<html><body><p>Hello {name},</p><p>Thanks for your order <b>#{n}</b>.</p>" \
       + "<p>Lorem ipsum dolor sit amet.</p>" * 20 + "</body></html>"
BOUNCE = """From: MAILER-DAEMON@mx.example.net
To: billing@acme.example
Subject: Undelivered Mail Returned to Sender
Message-ID: <bounce.{n}@mx.example.net>
Date: Mon, 1 Jun 2026 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND{n}"

--BOUND{n}
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.
<customer{n}@example.org>: host mx.example.org said: 550 5.1.1 User unknown

--BOUND{n}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Final-Recipient: rfc822; customer{n}@example.org
Action: failed
Status: 5.1.1

--BOUND{n}
Content-Type: text/rfc822-headers

From: billing@acme.example
To: customer{n}@example.org
Subject: Invoice {n}
Message-ID: <{n}.out@acme.example>

--BOUND{n}--
"""


def message(n: int, rng: random.Random) -> bytes:
    kind = rng.choices(["plain", "html", "attachment", "reply", "bounce"], [3, 3, 1.5, 2, 0.5])[0]
    if kind == "bounce":
        return BOUNCE.format(n=n).replace("\n", "\r\n").encode()
    name = NAMES[n % len(NAMES)]
    fields = {"name": name, "n": n}
    headers = {}
    subject = f"Order #{n} — {name}"
    if kind == "reply":
        refs = [f"<{n - k}.thread@example.org>" for k in range(rng.randint(10, 40), 0, -1)]
        headers = {"In-Reply-To": refs[-1], "References": " ".join(refs)}
        subject = "Re: " + subject
    return mime.build_message(
        from_addr=(name, f"customer{n}@example.org"),
        to=[("Acme Sales", "sales@acme.example")],
        cc=[("Ana", "ana@acme.example")] if n % 3 else [],
        subject=subject, message_id=f"<{n}.in@example.org>", headers=headers,
        text=TEXT.format(**fields),
        html=HTML.format(**fields) if kind != "plain" else None,
        attachments=[mime.Attachment(f"scan{n}.pdf", "application/pdf", os.urandom(40_000))]
        if kind == "attachment" else [],
    )


def read_ours(raw: bytes) -> tuple:
    head = inbound.parse_head(raw)
    return head.message_id, head.from_address, head.to, head.cc, head.subject, head.references


def read_stdlib(policy):
    def parse(raw: bytes) -> None:
        msg = email.message_from_bytes(raw, policy=policy)
        for name in ("message-id", "from", "to", "cc", "subject", "references"):
            str(msg[name])
        if policy is email.policy.default:
            msg["from"].addresses, msg["to"].addresses
        else:
            email.utils.getaddresses(msg.get_all("to", []))
    return parse


def rate(func, corpus: list[bytes], seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while True:
        for raw in corpus:
            func(raw)
        count += len(corpus)
        now = time.perf_counter()
        if now - start >= seconds:
            return count / (now - start)


def main() -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "1"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    rng = random.Random(2026)
    corpus = [message(n, rng) for n in range(1000, 3000)]
    cases = [
        ("parse_head + routing fields (lib/inbound)", read_ours),
        ("parse_head only (lib/inbound)", inbound.parse_head),
        ("parse_body (lib/inbound)", inbound.parse_body),
        ("full parse: stdlib policy.default", read_stdlib(email.policy.default)),
        ("full parse: stdlib compat32", read_stdlib(email.policy.compat32)),
    ]
    total = sum(map(len, corpus))
    print(f"corpus: {len(corpus):,} messages, {total / 1e6:.1f} MB; {rounds} interleaved "
          f"rounds of >= {seconds:g} s, best kept; load average {os.getloadavg()[0]:.1f}",
          flush=True)
    best = dict.fromkeys((label for label, _ in cases), 0.0)
    for _ in range(rounds):
        for label, func in cases:
            best[label] = max(best[label], rate(func, corpus, seconds))
    ours = best[cases[0][0]]
    print(f"{'what':<44} {'messages/s':>12} {'head faster':>12}")
    for label, value in best.items():
        print(f"{label:<44} {value:>12,.0f} {ours / value:>11.1f}x")
    print(f"(one core, python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
