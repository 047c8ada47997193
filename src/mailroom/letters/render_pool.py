"""Render many letters on every core: a pool of processes, each running `render_jobs.run`.

WeasyPrint lays out one page at a time on one core (and is not thread-safe), so a mass "Send
by post" of 200 invoices would use half of a two-core machine. The pool renders letters side
by side in child processes while this process stores and queues the finished ones in order.

- Children start from a fresh `forkserver` (never `fork` of a threaded web or worker
  process) and set Django up once; they never open a database connection — a job carries
  its HTML and PDFs, the outcome its PDFs.
- `MAILROOM_LETTER_RENDERERS` sets the number of processes (default: the number of cores,
  at most 4); 0 or 1 renders in this process. One letter is always rendered here: starting
  a process costs more than the letter.
- A pool that breaks (a child killed by the OOM killer) is dropped and the letters are
  rendered here instead: slower, never lost.
- A pool left idle for `IDLE_SECONDS` is shut down: a web process that sent one mass mailing
  does not keep its renderers' memory for the rest of the day.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from mailroom.letters.render_jobs import RenderJob, RenderOutcome, run

log = logging.getLogger("mailroom.letters")
MAX_DEFAULT = 4
IDLE_SECONDS = 120.0

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0
_last_used = 0.0
_idle_timer: threading.Timer | None = None


def size() -> int:
    """How many processes render letters side by side (1: in this process)."""
    raw = os.environ.get("MAILROOM_LETTER_RENDERERS", "")
    try:
        wanted = int(raw) if raw.strip() else min(os.cpu_count() or 1, MAX_DEFAULT)
    except ValueError:
        wanted = 1
    return max(1, wanted)


def _child_setup() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailroom.settings")
    django.setup()


def _executor(workers: int) -> ProcessPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != workers:
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=True)
            context = multiprocessing.get_context("forkserver")
            _pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                        initializer=_child_setup)
            _pool_size = workers
        return _pool


def _drop(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


def _touch() -> None:
    """The pool was just used: (re)arm the idle shutdown."""
    global _last_used, _idle_timer
    with _lock:
        _last_used = time.monotonic()
        if _idle_timer is None:
            _idle_timer = threading.Timer(IDLE_SECONDS, _stop_if_idle)
            _idle_timer.daemon = True
            _idle_timer.start()


def _stop_if_idle() -> None:
    global _pool, _idle_timer
    with _lock:
        _idle_timer = None
        idle = time.monotonic() - _last_used
        if idle < IDLE_SECONDS:  # used meanwhile: look again later
            _idle_timer = threading.Timer(IDLE_SECONDS - idle, _stop_if_idle)
            _idle_timer.daemon = True
            _idle_timer.start()
            return
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=False)


def shutdown() -> None:
    """Stop the children (tests, and a process that is about to exit)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


class Renderer:
    """Jobs handed to the pool as soon as each is planned (the children start on the first
    letter while this process plans the next), outcomes taken back in order."""

    def __init__(self, expected: int):
        workers = min(size(), expected)
        self.pool = _executor(workers) if workers > 1 else None
        self.items: list[tuple[RenderJob, Future | None]] = []

    def submit(self, job: RenderJob) -> None:
        future = None
        if self.pool is not None:
            try:
                future = self.pool.submit(run, job)
            except (BrokenProcessPool, RuntimeError):  # broken or shut down: render here
                _drop(self.pool)
                self.pool = None
        self.items.append((job, future))

    def results(self) -> Iterator[RenderOutcome]:
        """Each job's outcome in order, as soon as it is ready (the caller stores letter 1
        while letters 2 and 3 are still rendering)."""
        if self.pool is not None:
            _touch()
        for job, future in self.items:
            if future is not None:
                try:
                    yield future.result()
                    continue
                except BrokenProcessPool:
                    log.warning("letters: the render pool broke; rendering in this process")
                    if self.pool is not None:
                        _drop(self.pool)
                        self.pool = None
            yield run(job)


def render_all(jobs: list[RenderJob]) -> Iterator[RenderOutcome]:
    """The outcome of each job, in order (see `Renderer`)."""
    renderer = Renderer(len(jobs))
    for job in jobs:
        renderer.submit(job)
    return renderer.results()
