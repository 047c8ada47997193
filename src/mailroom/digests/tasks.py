"""The digest cron task: send every due digest (exactly once per period, see sending.py)."""

from mailroom.core.cron import register_task
from mailroom.digests.sending import run_due


@register_task("send_digests", schedule="@every 1m")
def send_due_digests() -> None:
    run_due()
