"""The worker loop: registered steps called in turn, each returning whether it found work.

Apps register their steps (sender, router, fetcher…) in `core.steps` and cron tasks in
`core.cron`, from their `tasks.py`, which `core.steps.discover()` imports. SIGTERM or SIGINT
sets a flag: the current step finishes, then the loop exits.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import threading
import time

from django.db import close_old_connections, connections

from mailroom.core.cron import run_due_job
from mailroom.core.steps import STEPS, register_step

log = logging.getLogger("mailroom.worker")


@register_step("cron")
def cron_step(worker_name: str) -> bool:
    return run_due_job(worker_name)


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    def __init__(self, steps: list[str] | None = None, name: str | None = None,
                 idle_sleep: float = 0.2, error_pause: float = 1.0) -> None:
        unknown = [s for s in steps or [] if s not in STEPS]
        if unknown:
            raise ValueError(f"Unknown steps: {', '.join(unknown)}. Known: {', '.join(STEPS)}")
        self.steps = [STEPS[s] for s in (steps or list(STEPS))]
        self.name = name or default_worker_name()
        self.idle_sleep = idle_sleep
        self.error_pause = error_pause
        self.stopping = threading.Event()

    def install_signal_handlers(self) -> None:
        def stop(signum, frame):
            log.info("worker %s: %s received, finishing the current step",
                     self.name, signal.Signals(signum).name)
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def stop(self) -> None:
        self.stopping.set()

    def run_once(self) -> bool:
        """Run each step once; True if any found work. A failing step is logged and the
        loop goes on (after a short pause, so a broken step cannot spin)."""
        busy = False
        for step in self.steps:
            if self.stopping.is_set():
                break
            close_old_connections()
            try:
                busy = bool(step.func(self.name)) or busy
            except Exception:
                log.exception("worker %s: step %s failed", self.name, step.name)
                self.stopping.wait(self.error_pause)
        return busy

    def run(self, max_seconds: float | None = None) -> None:
        log.info("worker %s: running steps %s", self.name, ", ".join(s.name for s in self.steps))
        deadline = time.monotonic() + max_seconds if max_seconds else None
        try:
            while not self.stopping.is_set():
                if deadline and time.monotonic() > deadline:
                    break
                if not self.run_once():
                    # jitter keeps several idle workers from polling in lockstep
                    self.stopping.wait(self.idle_sleep * random.uniform(0.5, 1.5))
        finally:
            connections.close_all()
        log.info("worker %s: stopped", self.name)
