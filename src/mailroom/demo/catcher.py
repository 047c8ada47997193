"""The mail catcher's SMTP listener (aiosmtpd on loopback): it accepts every message for every
recipient and stores it (`store`, i.e. `services.catch`) before answering 250.

It is a development aid, not a mail server: it listens on loopback only (a non-loopback
address is refused), offers no TLS or AUTH, and never relays anything anywhere.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.smtp import SMTP
from django.conf import settings
from django.db import close_old_connections

from mailroom.lib.netloc import is_loopback

log = logging.getLogger("mailroom.catcher")


class Handler:
    def __init__(self, store: Callable[..., Any]) -> None:
        self.store = store
        # one thread for database work: SQLite has one writer anyway, and Django connections
        # belong to the thread that opened them
        self.db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="catcher-db")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        loop = asyncio.get_running_loop()
        try:
            caught = await loop.run_in_executor(self.db, self._store, envelope)
        except Exception:  # noqa: BLE001 - the sender retries a 451; log why
            log.exception("could not store a caught mail")
            return "451 4.3.0 Could not store the message; try again later"
        log.info("caught %s for %s (%d bytes)", caught.message_id or "a mail",
                 ", ".join(envelope.rcpt_tos), caught.size)
        return "250 2.0.0 OK: caught, not delivered"

    def _store(self, envelope):
        close_old_connections()
        raw = envelope.original_content or envelope.content or b""
        return self.store(raw, envelope_from=envelope.mail_from or "",
                          envelope_to=list(envelope.rcpt_tos))


class Catcher:
    """The listener on its own event loop in a background thread; `port` is the bound one
    (ask for port 0 to get any free port)."""

    def __init__(self, host: str, port: int, store: Callable[..., Any]) -> None:
        if not is_loopback(host):
            raise ValueError(f"The mail catcher listens on loopback only, not {host!r}.")
        self.host, self.requested_port = host, port
        self.handler = Handler(store)
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    def _factory(self) -> SMTP:
        return SMTP(self.handler, hostname="mailroom-catcher.localhost",
                    ident="Mailroom mail catcher (nothing is delivered)",
                    data_size_limit=settings.MAILROOM_INBOUND_MAX_BYTES,
                    decode_data=False, enable_SMTPUTF8=True)

    def start(self) -> Catcher:
        """Bind (raises OSError when the port is taken) and serve in the background."""
        self.server = self.loop.run_until_complete(
            self.loop.create_server(self._factory, self.host, self.requested_port))
        self._thread = threading.Thread(target=self.loop.run_forever, name="catcher-loop",
                                        daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._thread is None:
            return

        async def close() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self._thread = None
        self.loop.close()
        self.handler.db.shutdown(wait=True)

    def __enter__(self) -> Catcher:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
