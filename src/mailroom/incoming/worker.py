"""The router's worker step (the fetcher's step and cron live in tasks.py)."""

from __future__ import annotations

from mailroom.core.worker import register_step


@register_step("router")
def router_step(worker_name: str) -> bool:
    from mailroom.incoming.router import route_pending

    return route_pending(worker_name) > 0
