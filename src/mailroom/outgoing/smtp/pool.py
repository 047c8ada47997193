"""Open SMTP connections kept between sender passes."""

from __future__ import annotations

import threading
import time

from mailroom.outgoing.models import MailServer
from mailroom.outgoing.smtp.transport import SmtpConnection, pool_key


class ConnectionPool:
    """Open connections kept between sender passes, so a busy worker does not pay a TCP, TLS
    and AUTH handshake for every batch. Connections idle longer than `max_idle` seconds are
    closed (servers drop idle sessions after a while; RFC 5321 allows 5 minutes)."""

    def __init__(self, max_idle: float = 10.0) -> None:
        self.max_idle = max_idle
        self._idle: dict[tuple, list[tuple[float, SmtpConnection]]] = {}
        self._lock = threading.Lock()

    def take(self, server: MailServer) -> SmtpConnection | None:
        now = time.monotonic()
        with self._lock:
            idle = self._idle.get(pool_key(server), [])
            while idle:
                since, connection = idle.pop()
                if connection.is_open and now - since <= self.max_idle:
                    connection.server = server  # the fresh row (circuit, limits)
                    return connection
                connection.close()
        return None

    def give(self, connection: SmtpConnection) -> None:
        if not connection.is_open or (
                connection.messages_sent >= connection.server.max_per_connection):
            connection.close()
            return
        with self._lock:
            self._idle.setdefault(connection.pool_key(), []).append(
                (time.monotonic(), connection))

    def close_idle(self) -> None:
        now = time.monotonic()
        with self._lock:
            stale = [c for idle in self._idle.values() for since, c in idle
                     if now - since > self.max_idle]
            for key, idle in list(self._idle.items()):
                self._idle[key] = [(since, c) for since, c in idle if now - since <= self.max_idle]
        for connection in stale:
            connection.close()

    def close_all(self) -> None:
        with self._lock:
            every = [c for idle in self._idle.values() for _, c in idle]
            self._idle.clear()
        for connection in every:
            connection.close()
