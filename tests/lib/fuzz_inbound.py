"""Atheris harness for lib/inbound.py: any bytes give a result or an InboundError.

    .venv/bin/python tests/lib/fuzz_inbound.py -max_total_time=60 [corpus_dir]

Run for a while by tests/lib/test_inbound_fuzz.py (marked slow). Seeds are a few real-looking
messages, so the fuzzer starts inside MIME structure instead of guessing it.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from mailroom.lib import inbound, inbound_fields  # noqa: F401 - instrumented too

LIMITS = inbound.Limits(max_seconds=2.0)
PROPERTIES = ("message_id", "in_reply_to", "references", "subject", "from_name",
              "from_address", "sender_address", "reply_to", "to", "cc", "date")


def test_one_input(data: bytes) -> None:
    try:
        head = inbound.parse_head(data, LIMITS)
    except inbound.InboundError:
        pass
    else:
        for name in PROPERTIES:
            getattr(head, name)
        head.get_all("received")
    try:
        inbound.parse_body(data, LIMITS)
    except inbound.InboundError:
        pass


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
