"""A gateway in this process, on its own loop in a background thread: for tests and
benchmarks."""

from __future__ import annotations

import asyncio
import ssl
import threading

from mailroom.incoming.gateway.from_settings import limits_from_settings
from mailroom.incoming.gateway.listeners import Gateway, Limits, Listen
from mailroom.incoming.services import max_message_bytes


class RunningGateway:
    """A gateway on its own loop in a background thread."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="gateway-loop",
                                        daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(gateway.start(), self.loop).result(30)
        except BaseException:
            self._end_loop()
            raise

    @property
    def smtp_port(self) -> int | None:
        return self.gateway.smtp_port

    @property
    def lmtp_port(self) -> int | None:
        return self.gateway.lmtp_port

    def stop(self, grace: float = 5.0) -> None:
        if self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.gateway.stop(grace), self.loop).result(grace + 30)
        self._end_loop()

    def _end_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self._thread = None
        self.loop.close()

    def __enter__(self) -> RunningGateway:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_gateway(smtp: Listen | None = ("127.0.0.1", 0),
                  lmtp: Listen | None = ("127.0.0.1", 0), *, max_bytes: int | None = None,
                  tls: ssl.SSLContext | None = None, db_threads: int = 1,
                  hostname: str = "mx.mailroom.test",
                  limits: Limits | None = None) -> RunningGateway:
    """Start a gateway in this process (port 0: any free port; read `.smtp_port`).
    `limits`: default, those of MAILROOM_GATEWAY_* (as `mailroom gateway` has them)."""
    return RunningGateway(Gateway(smtp=smtp, lmtp=lmtp, tls=tls, hostname=hostname,
                                  max_bytes=max_bytes or max_message_bytes(),
                                  db_threads=db_threads,
                                  limits=limits or limits_from_settings()))
