"""Inbound benchmark: messages accepted by the SMTP gateway and routed, per second.

    ./scripts/bench inbound [--count 2000] [--connections 4] [--quick]

For SQLite and PostgreSQL (when reachable) with 1 and 2 router workers, a mixed corpus
(bench/inbound_corpus.py) goes through `mailroom gateway` over SMTP while the workers route
it; the rate counts from the first SMTP connection to the last message routed. Baselines on
the same corpus, same run: the stdlib parser (policy.default and compat32) parsing each
message whole, and lib.inbound's header parse that routing actually pays for. "gw ms/msg"
and "rt ms/msg": CPU time the gateway and the routers (together) spent per message — on a
noisy machine the rates move by a third between runs of the same code, these much less.
"""

from __future__ import annotations

import argparse
import os
import time

from bench.outbound import PG_ADMIN_URL, Database, run_json

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailroom.settings")


def parse_rates(messages: list[bytes]) -> dict[str, float]:
    from email import policy
    from email.parser import BytesParser

    from mailroom.lib import inbound

    rates = {}
    for name, parse in (
        ("stdlib policy.default", BytesParser(policy=policy.default).parsebytes),
        ("stdlib compat32", BytesParser(policy=policy.compat32).parsebytes),
        ("lib.inbound parse_head", inbound.parse_head),
        ("lib.inbound head + body", lambda raw: inbound.parse_body(raw)),
    ):
        started = time.perf_counter()
        for raw in messages:
            parse(raw)
        rates[name] = len(messages) / (time.perf_counter() - started)
    return rates


def pg_reachable() -> bool:
    import psycopg

    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
        return True
    except psycopg.OperationalError:
        return False


def main() -> None:
    import django

    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="500 messages, 1 worker")
    args = parser.parse_args()
    count = 500 if args.quick else args.count
    django.setup()
    from bench.inbound_corpus import corpus

    sent = [(i + 1, f"<sent-{i}@acme.bench>", i + 1) for i in range(100)]
    messages = [raw for _, _, raw in corpus(count, sent, "acme.bench")]
    print(f"corpus: {len(messages)} messages, {sum(map(len, messages)) / len(messages):,.0f} "
          f"bytes on average")
    base = parse_rates(messages)
    for name, rate in base.items():
        print(f"  {name:<28} {rate:>9,.0f} messages/s")
    stdlib = base["stdlib policy.default"]
    kinds = ["sqlite"] + (["postgresql"] if pg_reachable() else [])
    print(f"\n{'database':<11} {'workers':>7} {'accepted/s':>11} {'routed/s':>9} "
          f"{'vs stdlib':>9} {'gateway MB':>10} {'router MB':>9} {'gw ms/msg':>9} "
          f"{'rt ms/msg':>9}  decisions")
    for kind in kinds:
        for workers in ([1] if args.quick else [1, 2]):
            db = Database(kind)
            try:
                result = run_json(["bench.inbound_scenario", "--count", str(count),
                                   "--workers", str(workers),
                                   "--connections", str(args.connections)], db.env())
            finally:
                db.drop()
            print(f"{kind:<11} {workers:>7} {result['accept_per_s']:>11,.0f} "
                  f"{result['routed_per_s']:>9,.0f} {result['routed_per_s'] / stdlib:>8.2f}x "
                  f"{result['gateway_peak_mb']:>10.0f} {result['router_peak_mb']:>9.0f} "
                  f"{result['gateway_ms_per_msg']:>9.2f} {result['router_ms_per_msg']:>9.2f}  "
                  f"{result['decisions']}")
    if len(kinds) == 1:
        print("(PostgreSQL not reachable: its rows were skipped)")


if __name__ == "__main__":
    main()
