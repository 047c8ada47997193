"""`mailroom catcher`: the demo mail catcher — an SMTP listener on loopback that stores every
message it receives for the Caught mail page and delivers nothing. `mailroom run` starts it
when MAILROOM_MAIL_CATCHER is set (by default with the embedded SQLite database)."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from mailroom.core.management import stop_when_supervisor_dies
from mailroom.demo import services
from mailroom.demo.catcher import Catcher


class Command(BaseCommand):
    help = ("Catch mail on loopback (SMTP, no TLS, no login) and keep it for the Caught mail "
            "page; nothing is delivered. Default: MAILROOM_MAIL_CATCHER, else 127.0.0.1:2526.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--listen", default=None, metavar="HOST:PORT",
                            help="Where to listen (a loopback address).")

    def handle(self, *args, listen: str | None, **options) -> None:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: stop.set())
        stop_when_supervisor_dies()
        try:
            if listen:
                host, _, port = listen.rpartition(":")
                if not port.isdigit():
                    raise ValueError(f"--listen must be HOST:PORT, not {listen!r}")
                address = (host.strip("[]"), int(port))
            else:
                address = services.catcher_address()
            catcher = Catcher(*address, store=services.catch).start()
        except (ValueError, OSError) as exc:
            raise CommandError(f"The mail catcher cannot listen: {exc}") from None
        self.stderr.write(f"catcher: SMTP on {address[0]}:{catcher.port} — mail sent there is "
                          f"kept on the Caught mail page, never delivered")
        self.stderr.flush()
        stop.wait()
        catcher.stop()
        self.stderr.write("catcher: stopped")
