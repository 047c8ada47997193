"""`mailroom worker`: run the background steps (cron, and each app's sender, router…)."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mailroom.core.keyring import refuse_to_start_without_keys
from mailroom.core.management import stop_when_supervisor_dies
from mailroom.core.steps import STEPS, discover
from mailroom.core.worker import Worker


class Command(BaseCommand):
    help = (
        "Run the worker loop until SIGTERM or Ctrl-C, which let the current step finish. "
        "Any number of workers may share one database."
    )
    # Started by a supervisor, several at once and again after a crash: no system checks
    # (`mailroom check` and `mailroom web` run them). They cost about 1.2 s of CPU per start
    # (the URLconf and the API's schemas), and Django's probe of SQLite's JSON support waits
    # behind a router's write lock on a busy file.
    requires_system_checks: list = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--steps", default="",
                            help="Comma-separated steps to run (default: all registered).")
        parser.add_argument("--name", default=None,
                            help="Worker name recorded on cron runs (default: host:pid).")
        parser.add_argument("--max-seconds", type=float, default=None,
                            help="Stop after this many seconds (default: run until stopped).")
        parser.add_argument("--idle-sleep", type=float, default=0.2,
                            help="Seconds to wait when no step found work (default: 0.2).")
        parser.add_argument("--nice", type=int, default=None,
                            help="CPU niceness to run at (default: MAILROOM_WORKER_NICE, 10; "
                                 "0 leaves it as started).")

    def handle(self, *args, steps: str, name: str | None, max_seconds: float | None,
               idle_sleep: float, nice: int | None, **options) -> None:
        yield_cpu(settings.MAILROOM_WORKER_NICE if nice is None else nice)
        refuse_to_start_without_keys()  # on PostgreSQL: the installation's keys, or exit
        discover()
        wanted = [s.strip() for s in steps.split(",") if s.strip()] or None
        try:
            worker = Worker(steps=wanted, name=name, idle_sleep=idle_sleep)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if not worker.steps:
            raise CommandError(f"No steps to run. Known: {', '.join(STEPS) or 'none'}")
        worker.install_signal_handlers()
        stop_when_supervisor_dies()
        worker.run(max_seconds=max_seconds)


def yield_cpu(niceness: int) -> None:
    """Run at `niceness` (never back up: a process may only lower its own priority). Routing
    a burst, sending a campaign or drawing digests then takes the CPU the gateway and the web
    leave: measured with `./scripts/bench inbound` on PostgreSQL with two routers, the
    gateway accepted 209 messages/s with the routers at 0 and 320/s with them at 10, for 5%
    less routed."""
    if niceness <= 0:
        return
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if current < niceness:
        os.setpriority(os.PRIO_PROCESS, 0, min(niceness, 19))
