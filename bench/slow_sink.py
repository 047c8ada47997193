"""A sink that answers each message after a delay: a slow remote server, for concurrency.

python -m bench.slow_sink PORT DELAY_MS [--pipelining]

With --pipelining it offers RFC 2920 PIPELINING in its EHLO reply, as Postfix, Exim, Gmail and
Microsoft 365 do.
"""

from __future__ import annotations

import asyncio
import sys

from aiosmtpd.controller import Controller


class SlowHandler:
    def __init__(self, delay: float, pipelining: bool) -> None:
        self.delay = delay
        self.pipelining = pipelining
        self.count = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        self.count += 1
        return "250 OK"


def main() -> None:
    port, delay_ms = int(sys.argv[1]), int(sys.argv[2])
    pipelining = "--pipelining" in sys.argv[3:]
    controller = Controller(SlowHandler(delay_ms / 1000, pipelining), hostname="127.0.0.1",
                            port=port, data_size_limit=50 * 1024 * 1024)
    controller.start()
    try:
        asyncio.run(asyncio.Event().wait())
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
