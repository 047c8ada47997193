"""The campaign engine: audience (who gets it), render (once per language and variant),
queue (outbox rows on the bulk lane, in batches) and the `campaigns` worker step."""

from __future__ import annotations


def register() -> None:
    """Called by the app's ready(): the worker step and the delivery hook."""
    from mailroom.campaigns.engine import step  # noqa: F401 - registers the step
    from mailroom.campaigns.engine.queue import SENT_HOOK, mark_sent
    from mailroom.outgoing.hooks import register_delivery_hook

    register_delivery_hook(SENT_HOOK, mark_sent)
