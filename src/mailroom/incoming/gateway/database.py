"""The gateway's database side: ORM calls run off the event loop in a few long-lived
threads, and `store`, which writes one InboundMail per company."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import close_old_connections, connections, transaction

from mailroom.incoming import intake, services

log = logging.getLogger("mailroom.gateway")


class Database:
    """Runs ORM calls off the event loop, in a few threads that live as long as the gateway.

    Each thread keeps its connection between calls; at most once a second, and after every
    error, it lets Django drop a connection that is broken or past CONN_MAX_AGE (on SQLite,
    whose CONN_MAX_AGE is 0, that means one reconnect a second rather than one per message).
    """

    check_every = 1.0

    def __init__(self, threads: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gateway-db")
        self._local = threading.local()
        self._wrappers: list[Any] = []  # each thread's database connection wrapper

    async def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, functools.partial(self._call, func, args, kwargs))

    def _call(self, func: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        now = time.monotonic()
        if now - getattr(self._local, "checked", 0.0) >= self.check_every:
            if not hasattr(self._local, "checked"):
                self._wrappers.append(connections["default"])
            close_old_connections()
            self._local.checked = now
        try:
            return func(*args, **kwargs)
        except BaseException:
            close_old_connections()
            raise

    def close(self) -> None:
        """Wait for running calls, then close the threads' connections from here."""
        self.executor.shutdown(wait=True)
        for wrapper in self._wrappers:
            wrapper.inc_thread_sharing()  # Django's way to allow a close from this thread
            try:
                wrapper.close()
            except Exception:
                log.exception("gateway: closing a database connection failed")
            finally:
                wrapper.dec_thread_sharing()
        self._wrappers.clear()


def store(raw: bytes, groups: list[tuple[Any, list[str]]], *, source: str, together: bool,
          envelope_from: str, remote_ip: str | None, helo: str) -> list[int] | list[str]:
    """One InboundMail per company; `together`: all rows in one transaction. On SQLite,
    rows of the intake spool instead (incoming.intake: accepting never waits on routing)."""
    if intake.enabled():
        return services.accept_spooled(raw, [(domain.company, addresses)
                                             for domain, addresses in groups],
                                       source=source, envelope_from=envelope_from,
                                       remote_ip=remote_ip, helo=helo)

    def store_all() -> list[int]:
        return [services.accept(raw, company=domain.company, source=source,
                                envelope_from=envelope_from, envelope_to=addresses,
                                remote_ip=remote_ip, helo=helo).pk
                for domain, addresses in groups]

    if together and len(groups) > 1:
        with transaction.atomic():
            return store_all()
    return store_all()

