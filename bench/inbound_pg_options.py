"""PostgreSQL connection options for routing, compared in one process.

    ./scripts/bench inbound_pg_options [--rounds 9] [--slice 80]

Two versions of a setting run in separate processes on a shared 2-core machine differ by
whatever the machine did meanwhile: here the same code moved by up to 40% within an hour,
which hides a 10% change. This bench routes the bench's inbound corpus (bench/inbound_corpus.py)
through the product's router (`route_pending`, the worker step's own function) in slices,
switching the connection's options between slices and rotating their order each round, and
prints per option the median CPU per message of the router and of its PostgreSQL backend,
and the median of the paired ratios against Django's default (client-side binding, nothing
prepared). The options are those `settings._database` chooses (server-side binding, statements
prepared after 5 runs) and binding alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from bench.inbound import pg_reachable
from bench.outbound import Database

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailroom.settings")

OPTIONS = {
    "client binding (Django's default)": {"server_side_binding": False},
    "server binding alone": {"server_side_binding": True},
    "server binding, prepared after 5 (Mailroom)": {"server_side_binding": True,
                                                    "prepare_threshold": 5},
}


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(rounds: int, per_slice: int) -> dict[str, list[tuple[float, float]]]:
    from django.db import connection

    from bench.inbound_corpus import corpus
    from bench.inbound_scenario import setup
    from mailroom.core.models import Company
    from mailroom.incoming.router import route_pending
    from mailroom.incoming.services import accept

    sent = setup(replies=100)
    company = Company.objects.get(name="Acme Bench")
    warm = 20  # each slice first routes these on its new connection (connect, prepare)
    total = 100 + rounds * len(OPTIONS) * (per_slice + warm)
    for sender, recipients, raw in corpus(total, sent, "acme.bench"):
        accept(raw, company=company, source="smtp", envelope_from=sender,
               envelope_to=recipients, remote_ip="127.0.0.1")
    route_pending("warm", limit=100)
    found: dict[str, list[tuple[float, float]]] = {name: [] for name in OPTIONS}
    names = list(OPTIONS)
    for index in range(rounds):
        for name in names[index % len(names):] + names[:index % len(names)]:
            connection.close()
            connection.settings_dict["OPTIONS"] = dict(OPTIONS[name])
            route_pending("bench", limit=warm)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend = cursor.fetchone()[0]
            backend_before, before = _cpu_seconds(backend), time.process_time()
            routed = route_pending("bench", limit=per_slice)
            found[name].append((1000 * (time.process_time() - before) / routed,
                                1000 * (_cpu_seconds(backend) - backend_before) / routed))
    return found


def main() -> None:
    import django

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--slice", type=int, default=80)
    args = parser.parse_args()
    if not pg_reachable():
        raise SystemExit("PostgreSQL is not reachable: nothing to compare.")
    db = Database("postgresql")
    os.environ.update(db.env())
    django.setup()  # on that database (inbound_scenario.setup migrates it)
    from django.db import connections

    try:
        found = run(args.rounds, args.slice)
    finally:
        connections.close_all()
        db.drop()
    base = found[next(iter(OPTIONS))]
    print(f"{args.rounds} rounds of {args.slice} messages per option, order rotated; medians")
    print(f"{'options':<46} {'router ms/msg':>13} {'backend ms/msg':>14} {'both vs default':>15}")
    for name, slices in found.items():
        ratios = [(r + b) / (r0 + b0) for (r, b), (r0, b0) in zip(slices, base, strict=True)]
        print(f"{name:<46} {statistics.median(r for r, _ in slices):>13.2f} "
              f"{statistics.median(b for _, b in slices):>14.2f} "
              f"{statistics.median(ratios):>15.3f}")


if __name__ == "__main__":
    main()
