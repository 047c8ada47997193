"""One Mailroom end-to-end run, in its own process so each database starts clean.

python -m bench.mailroom_scenario --sink-port P --count N --workers W [--connections C]
  [--enqueue-only]
The database and data dir come from MAILROOM_DATABASE_URL / MAILROOM_DATA_DIR.
Prints one JSON line with enqueue and send rates and the workers' peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailroom.settings")


def setup(sink_port: int, connections: int):
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from mailroom.core.models import Company
    from mailroom.outgoing.models import MailServer

    company = Company.objects.create(name="Acme Bench")
    MailServer.objects.create(
        company=company, name="sink", host="127.0.0.1", port=sink_port,
        security=MailServer.Security.NONE, auth=MailServer.Auth.NONE, verify_certificate=True,
        max_connections=connections, max_per_connection=10_000, active=True,
        test_status=MailServer.Status.OK)
    return company


def enqueue(company, count: int) -> float:
    """Render and queue `count` mails in batches of 1,000, as a mass mailing would."""
    from bench.common import personalized
    from mailroom.outgoing import services

    started = time.perf_counter()
    batch = 1000
    for first in range(0, count, batch):
        items = []
        for n in range(first, min(first + batch, count)):
            subject, html, text, to = personalized(n)
            items.append({"email_from": "Acme Billing <billing@acme.example>", "to": [to],
                          "subject": subject, "html": html, "text": text})
        services.enqueue_many(company=company, mails=items)
    return time.perf_counter() - started


def send(count: int, workers: int, timeout: float) -> dict:
    from django.db.models import Max, Min

    from bench.common import peak_rss_mb
    from mailroom.outgoing.models import OutgoingMail, SendAttempt

    procs = [subprocess.Popen([sys.executable, "-m", "mailroom", "worker", "--steps", "send",
                               "--name", f"bench-{i}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i in range(workers)]
    deadline = time.monotonic() + timeout
    rss: dict[int, float] = {}
    sent = 0
    try:
        while time.monotonic() < deadline:
            sent = OutgoingMail.objects.filter(state="sent").count()
            for proc in procs:
                rss[proc.pid] = peak_rss_mb(proc.pid)
            if sent >= count or any(p.poll() is not None for p in procs):
                break
            time.sleep(0.25)
    finally:
        for proc in procs:
            rss[proc.pid] = peak_rss_mb(proc.pid)
            proc.terminate()
        errors = [p.communicate(timeout=30)[1].decode(errors="replace")[-2000:] for p in procs]
    span = SendAttempt.objects.aggregate(first=Min("started_at"))["first"]
    last = OutgoingMail.objects.aggregate(last=Max("sent_at"))["last"]
    seconds = (last - span).total_seconds() if span and last else float("nan")
    states = dict(OutgoingMail.objects.values_list("state").annotate(n=Max("id")).values_list(
        "state", "n"))
    return {"sent": sent, "send_seconds": seconds, "send_rate": sent / seconds if seconds else 0,
            "worker_peak_rss_mb": max(rss.values()) if rss else float("nan"),
            "states": list(states), "errors": [e for e in errors if "Traceback" in e][:1]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sink-port", type=int, required=True)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--enqueue-only", action="store_true")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    company = setup(args.sink_port, args.connections)
    enqueue_seconds = enqueue(company, args.count)
    from bench.common import self_peak_rss_mb

    result = {"count": args.count, "enqueue_seconds": enqueue_seconds,
              "enqueue_rate": args.count / enqueue_seconds,
              "enqueue_peak_rss_mb": self_peak_rss_mb()}
    if not args.enqueue_only:
        result.update(send(args.count, args.workers, args.timeout))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
