"""Worker steps: what a `mailroom worker` calls in turn, registered by the apps.

Apps register their steps (sender, router, fetcher…) with `register_step` and their cron tasks
with `core.cron.register_task` in their `tasks.py`, which `discover()` imports;
`MAILROOM_WORKER_MODULES` (comma-separated module names) adds more, e.g. plugins or test
helpers. Both the worker loop and cron's default jobs read this registry, so neither imports
the other.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from django.utils.module_loading import autodiscover_modules


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


_discovered = False


def discover() -> None:
    """Import every app's `tasks` module and the MAILROOM_WORKER_MODULES."""
    global _discovered
    if _discovered:
        return
    autodiscover_modules("tasks")
    extra = os.environ.get("MAILROOM_WORKER_MODULES", "")
    for module in (m.strip() for m in extra.split(",")):
        if module:
            importlib.import_module(module)
    _discovered = True
