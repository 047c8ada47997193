"""`mailroom web`: serve the web UI and API with waitress; whitenoise serves static files."""

from __future__ import annotations

import logging
import signal

from django.core.management.base import BaseCommand, CommandError

from mailroom.core.durability import acknowledge_every_commit
from mailroom.core.keyring import refuse_to_start_without_keys
from mailroom.core.management import stop_when_supervisor_dies
from mailroom.core.web_server import create_web_server

log = logging.getLogger("mailroom.web")


class Command(BaseCommand):
    help = "Serve the web UI and API (WSGI, waitress) until SIGTERM or Ctrl-C."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on.")
        parser.add_argument("--port", type=int, default=8000, help="Port to listen on.")
        parser.add_argument("--threads", type=int, default=8, help="Request threads.")

    def handle(self, *args, host: str, port: int, threads: int, **options) -> None:
        from django.core.wsgi import get_wsgi_application

        refuse_to_start_without_keys()  # on PostgreSQL: the installation's keys, or exit
        application = get_wsgi_application()
        acknowledge_every_commit()  # on SQLite: what a page says is saved survives power loss
        try:
            server = create_web_server(application, host=host, port=port, threads=threads,
                                       ident="Mailroom", clear_untrusted_proxy_headers=True)
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc}") from exc

        def stop(signum, frame):
            log.info("web: %s received, finishing open requests", signal.Signals(signum).name)
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        stop_when_supervisor_dies()
        for listen_host, listen_port in _listening(server):
            log.info("web: serving on http://%s:%s/ with %d threads",
                     listen_host, listen_port, threads)
        server.run()  # returns after KeyboardInterrupt, once open requests are done
        log.info("web: stopped")


def _listening(server) -> list[tuple[str, int]]:
    effective = getattr(server, "effective_listen", None)
    if effective is not None:  # several sockets (e.g. localhost on IPv4 and IPv6)
        return [(host, port) for host, port in ((item[0], item[1]) for item in effective)]
    return [(server.effective_host, server.effective_port)]
