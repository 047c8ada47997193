"""`mailroom gateway`: the SMTP + LMTP listener that receives mail for the alias domains."""

from __future__ import annotations

import asyncio
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from mailroom.core.keyring import refuse_to_start_without_keys
from mailroom.core.management import stop_when_supervisor_dies
from mailroom.incoming.gateway import ListenError, gateway_from_settings, serve


class Command(BaseCommand):
    help = ("Receive mail over SMTP and LMTP for the alias domains until SIGTERM or Ctrl-C, "
            "which let messages being stored finish. Defaults: MAILROOM_GATEWAY_SMTP, "
            "MAILROOM_GATEWAY_LMTP.")
    # Started by a supervisor, several at once and again after a crash: no system checks
    # (`mailroom check` and `mailroom web` run them). They cost about 1.2 s of CPU per start
    # (the URLconf and the API's schemas), and Django's probe of SQLite's JSON support waits
    # behind a router's write lock on a busy file.
    requires_system_checks: list = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--smtp", default=None, metavar="HOST:PORT",
                            help="SMTP listener ('' turns it off; default: "
                                 "MAILROOM_GATEWAY_SMTP, 127.0.0.1:2525).")
        parser.add_argument("--lmtp", default=None, metavar="HOST:PORT|unix:/path",
                            help="LMTP listener ('' turns it off; default: "
                                 "MAILROOM_GATEWAY_LMTP, 127.0.0.1:2424).")
        parser.add_argument("--db-threads", type=int, default=None,
                            help="Threads for database work (default: 1 on SQLite, 4 else).")

    def handle(self, *args, smtp: str | None, lmtp: str | None, db_threads: int | None,
               **options) -> None:
        refuse_to_start_without_keys()  # on PostgreSQL: the installation's keys, or exit
        try:
            gateway = gateway_from_settings(smtp=smtp, lmtp=lmtp, db_threads=db_threads)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        # a SIGTERM while the listeners open (a quick Ctrl-C on `mailroom run`) still stops
        # cleanly: remember it until the loop's own handlers take over
        early = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: early.set())
        stop_when_supervisor_dies()
        try:
            asyncio.run(serve(gateway, early=early))
        except ListenError as exc:
            raise CommandError(str(exc)) from None
