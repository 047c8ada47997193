"""The worker loop: registered steps called in turn, each returning whether it found work.

Later apps register the sender, router and fetcher here. SIGTERM sets a flag; the current
step finishes and the loop exits.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import close_old_connections

log = logging.getLogger("mailroom.worker")


@dataclass(frozen=True)
class Step:
    name: str
    func: Callable[[str], bool]


STEPS: dict[str, Step] = {}


def register_step(name: str) -> Callable:
    def decorator(func: Callable[[str], bool]) -> Callable[[str], bool]:
        STEPS[name] = Step(name, func)
        return func

    return decorator


@register_step("cron")
def cron_step(worker_name: str) -> bool:
    from mailroom.core.cron import run_due_job

    return run_due_job(worker_name)


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    def __init__(self, steps: list[str] | None = None, name: str | None = None,
                 idle_sleep: float = 0.2) -> None:
        unknown = [s for s in steps or [] if s not in STEPS]
        if unknown:
            raise ValueError(f"Unknown steps: {', '.join(unknown)}. Known: {', '.join(STEPS)}")
        self.steps = [STEPS[s] for s in (steps or list(STEPS))]
        self.name = name or default_worker_name()
        self.idle_sleep = idle_sleep
        self.stopping = threading.Event()

    def install_signal_handlers(self) -> None:
        def stop(signum, frame):
            log.info("worker %s: signal %s, finishing the current step", self.name, signum)
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def run_once(self) -> bool:
        """Run each step once; True if any found work."""
        busy = False
        for step in self.steps:
            if self.stopping.is_set():
                break
            close_old_connections()
            try:
                busy = bool(step.func(self.name)) or busy
            except Exception:
                log.exception("worker %s: step %s failed", self.name, step.name)
                time.sleep(1)
        return busy

    def run(self, max_seconds: float | None = None) -> None:
        log.info("worker %s: running steps %s", self.name, ", ".join(s.name for s in self.steps))
        deadline = time.monotonic() + max_seconds if max_seconds else None
        while not self.stopping.is_set():
            if deadline and time.monotonic() > deadline:
                break
            if not self.run_once():
                self.stopping.wait(self.idle_sleep)
        log.info("worker %s: stopped", self.name)
