"""Helpers shared by Mailroom's process commands (`run`, `web`, `worker`)."""

from __future__ import annotations

import logging
import os
import signal
import threading

log = logging.getLogger("mailroom.process")

# Set by `mailroom run` in its children's environment: the supervisor's pid.
SUPERVISOR_ENV = "MAILROOM_SUPERVISOR_PID"


def stop_when_supervisor_dies(interval: float = 1.0) -> None:
    """In a child of `mailroom run`: SIGTERM ourselves if the supervisor disappears.

    The supervisor stops its children itself; this covers the case where it could not
    (killed with SIGKILL, OOM), so no web server or worker is left behind as an orphan.
    """
    expected = os.environ.get(SUPERVISOR_ENV)
    if not expected or not expected.isdigit():
        return
    parent = int(expected)

    def watch() -> None:
        stop = threading.Event()
        while not stop.wait(interval):
            if os.getppid() != parent:
                log.warning("supervisor %s is gone; stopping", parent)
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()
