"""bench/digests — digest emails for 1,000 users across 2 companies, end to end.

    ./scripts/bench digests            (or: python -m bench.digests [--users N] [--pg])

The path a user really takes: the cron task's `run_due` finds the two due digests (every
registered KPI each), computes the KPIs for the period and the 11 before it, draws the trend
charts, picks each user's tip, renders each user's mail in their language with the branded
layout, CSS inlining and the text part, and queues it with its inline PNG charts and its
DigestSend row. Users get three permission sets (Administrator, Mail Manager, User) and
three languages, so KPIs are computed once per company and period but shown per permission.

Each variant runs in its own process on a copy of the same database (peak RSS is that
process's own): the product as shipped, and the same run with the chart cache off (every
recipient's charts drawn again), the comparison the issue asks for. A third row is the
floor: `enqueue_many` of the same number of pre-rendered mails of the same size.
Target: 1,000 users in ≤ 10 s on the 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bench.common import ROOT, print_table

NOW = datetime(2026, 12, 7, 7, 5, tzinfo=UTC)  # Monday, just after 08:00 in Paris
PG_ADMIN_URL = os.environ.get("MAILROOM_TEST_POSTGRES_URL",
                              "postgres://postgres@127.0.0.1:5432/postgres")


def _django(database_url: str, data_dir: str) -> None:
    os.environ["MAILROOM_DATA_DIR"] = data_dir
    os.environ["MAILROOM_DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailroom.settings")
    import django

    django.setup()


def seed(users: int) -> None:
    """Two companies, `users` users between them, a year of business rows, one weekly
    digest per company showing every KPI, every user a recipient."""
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from mailroom.business.crm.models import Lead
    from mailroom.business.helpdesk.models import Ticket
    from mailroom.business.invoicing.models import Invoice
    from mailroom.business.projects.models import Task
    from mailroom.business.sales.models import Quotation
    from mailroom.contacts.models import Partner
    from mailroom.core import kpis
    from mailroom.core.models import Company, User
    from mailroom.digests.models import Digest
    from mailroom.digests.services import save_digest
    from mailroom.routing.models import AliasDomain

    rng = random.Random(7)
    groups = [Group.objects.get(name=name) for name in
              ("Administrator", "Mail Manager", "User")]
    languages = ["en_US", "fr_FR", "de_DE"]
    for index, (name, tz) in enumerate([("Acme SAS", "Europe/Paris"),
                                        ("Globex Inc", "America/New_York")]):
        company = Company.objects.create(name=name, timezone=tz, currency="EUR",
                                         email=f"hello@c{index}.example")
        AliasDomain.objects.create(company=company, name=f"c{index}.example")
        members = []
        for n in range(users // 2):
            user = User(username=f"c{index}u{n}", email=f"u{n}@c{index}.example",
                        first_name=f"User{n}", language=languages[n % 3],
                        last_seen_at=NOW - timedelta(hours=3))
            members.append(user)
        User.objects.bulk_create(members)
        members = list(User.objects.filter(username__startswith=f"c{index}u"))
        company.users.add(*members)
        for n, user in enumerate(members):
            user.groups.add(groups[n % 3])
        partner = Partner.objects.create(company=company, name="Customer",
                                         email=f"customer@c{index}.example")

        def when(days=365):
            return NOW - timedelta(days=rng.uniform(0, days))

        Lead.objects.bulk_create([Lead(company=company, name=f"Lead {n}", created_at=when(),
                                       expected_revenue=Decimal(rng.randint(100, 9000)),
                                       stage=rng.choice(["new", "won", "lost"]))
                                  for n in range(1500)])
        Ticket.objects.bulk_create([Ticket(company=company, name=f"Ticket {n}", number=n + 1,
                                           ref=f"HD-{n + 1:05d}",
                                           created_at=when(),
                                           stage=rng.choice(["new", "solved"]))
                                    for n in range(1500)])
        Task.objects.bulk_create([Task(company=company, name=f"Task {n}", created_at=when(),
                                       stage=rng.choice(["todo", "done"]))
                                  for n in range(1000)])
        Quotation.objects.bulk_create([
            Quotation(company=company, partner=partner, created_at=when(), number=n + 1,
                      ref=f"S{n + 1:05d}",
                      date=when().date(), state=rng.choice(["draft", "sent", "sale"]),
                      amount_total=Decimal(rng.randint(100, 20000))) for n in range(1000)])
        Invoice.objects.bulk_create([
            Invoice(company=company, partner=partner, created_at=when(), number=n + 1,
                    ref=f"INV/{n + 1:05d}",
                    invoice_date=when().date(), due_date=when(200).date(), state="posted",
                    amount_total=Decimal(rng.randint(100, 20000)),
                    amount_residual=Decimal(rng.choice([0, 0, 500]))) for n in range(1000)])
        digest = save_digest(Digest(company=company, name="Weekly pulse", periodicity="weekly",
                                    kpis=[k.key for k in kpis.for_company(company)]),
                             actor=None, recipients=members)
        Digest.objects.filter(pk=digest.pk).update(
            created_at=NOW - timedelta(days=90), next_run_at=NOW - timedelta(minutes=5))


def run_variant(variant: str) -> dict:
    """Run in a child process: the digests of both companies, timed."""
    import resource

    from django.db import connection

    from mailroom.digests.board import Board
    from mailroom.digests.sending import run_due
    from mailroom.outgoing.services import enqueue_many

    if variant == "floor":
        from mailroom.core.models import Company

        html = "<p>" + "x" * 30_000 + "</p>"
        started = time.perf_counter()
        count = 0
        for company in Company.objects.all():
            users = list(company.users.all())
            for first in range(0, len(users), 200):
                enqueue_many(company=company, mails=[
                    {"email_from": f"{company.name} <n@{u.email.split('@')[1]}>",
                     "to": [u.email], "subject": "Weekly pulse", "html": html,
                     "text": "x" * 3000, "is_automatic": True}
                    for u in users[first:first + 200]])
                count += len(users[first:first + 200])
        seconds = time.perf_counter() - started
        return {"variant": variant, "seconds": seconds, "sent": count, "computed": 0,
                "charts": 0, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                / 1024, "vendor": connection.vendor}
    board = Board(chart_cache=variant == "cache")
    started = time.perf_counter()
    outcome = run_due(NOW, board=board)
    seconds = time.perf_counter() - started
    return {"variant": variant, "seconds": seconds, "sent": outcome.sent,
            "failed": outcome.failed, "computed": board.computed,
            "charts": board.charts_drawn,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "vendor": connection.vendor}


def _child(args) -> None:
    _django(args.database_url, args.data_dir)
    if args.seed:
        seed(args.users)
        print(json.dumps({"seeded": True}))
        return
    print(json.dumps(run_variant(args.variant)))


def _spawn(database_url: str, data_dir: str, *extra: str) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}/src:{ROOT}"}
    out = subprocess.run([sys.executable, "-m", "bench.digests", "--child", "--database-url",
                          database_url, "--data-dir", data_dir, *extra],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"bench child failed:\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _pg_database(name: str) -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _pg_copy(source: str, name: str) -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--pg", action="store_true", help="also on PostgreSQL")
    parser.add_argument("--quick", action="store_true", help="200 users")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="cache", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args)
    users = 200 if args.quick else args.users
    rows = []
    backends = ["sqlite"] + (["postgresql"] if args.pg else [])
    for backend in backends:
        work = tempfile.mkdtemp(prefix="mailroom-bench-digests-")
        data_dir = os.path.join(work, "data")
        if backend == "sqlite":
            seed_db = os.path.join(work, "seed.sqlite3")
            _spawn(f"sqlite:///{seed_db}", data_dir, "--seed", "--users", str(users))
        else:
            seed_name = "mr_bench_digests_seed"
            _spawn(_pg_database(seed_name), data_dir, "--seed", "--users", str(users))
        results = {}
        for variant in ("cache", "nocache", "floor"):
            if backend == "sqlite":
                db = os.path.join(work, f"{variant}.sqlite3")
                shutil.copyfile(seed_db, db)
                url = f"sqlite:///{db}"
            else:
                url = _pg_copy(seed_name, f"mr_bench_digests_{variant}")
            results[variant] = _spawn(url, data_dir, "--variant", variant)
        shutil.rmtree(work, ignore_errors=True)
        floor = results["floor"]["seconds"]
        labels = {"cache": "digests, chart cache on (shipped)",
                  "nocache": "digests, chart cache off", "floor": "enqueue_many, pre-rendered"}
        for variant, result in results.items():
            rows.append((backend, labels[variant], result["sent"], f"{result['seconds']:.2f}",
                         f"{result['sent'] / result['seconds']:.0f}",
                         result["computed"], result["charts"], f"{result['peak_mb']:.0f}",
                         f"x{result['seconds'] / floor:.1f}"))
    print(f"\nDigests for {users} users across 2 companies, every registered KPI "
          f"(target: 1,000 users in <= 10 s)\n")
    print_table(rows, ("db", "run", "mails", "seconds", "mails/s", "KPI values computed",
                       "charts drawn", "peak RSS MB", "vs floor"))


if __name__ == "__main__":
    main()
