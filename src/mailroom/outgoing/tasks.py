"""Worker steps of the outgoing app (imported by `mailroom worker` at start)."""

from __future__ import annotations

from mailroom.core.steps import register_step
from mailroom.outgoing.sending.engine import send_step


@register_step("send")
def send(worker_name: str) -> bool:
    """Claim a batch of due mails and send it; True when there was something to send."""
    return send_step(worker_name)
