"""The hourly task that runs date-based automations (invoice due in 3 days: an email; 30
days overdue: a letter).

Hourly rather than daily so that each company's day starts on time in its own time zone and
a worker that was down catches up within the hour; the runs table makes the extra passes
send nothing twice.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from mailroom.automation.models import AutomationRule
from mailroom.automation.triggers import run_date_rule
from mailroom.core.cron import register_task

log = logging.getLogger("mailroom.automation")


@register_task("automation_date_rules", schedule="5 * * * *")
def run_date_rules() -> str:
    """Every active date rule of every company; a failing rule never stops the others."""
    sent = failed = broken = 0
    rules = AutomationRule.objects.filter(active=True, trigger=AutomationRule.Trigger.DATE)
    for rule in rules.select_related("company", "template").order_by("pk"):
        try:
            ok, bad = run_date_rule(rule)
        except Exception as exc:
            log.exception("automation date rule %s failed", rule.pk)
            AutomationRule.objects.filter(pk=rule.pk).update(
                last_error=f"The date check failed: {type(exc).__name__}: {exc}"[:4000],
                last_error_at=timezone.now())
            broken += 1
            continue
        sent, failed = sent + ok, failed + bad
    text = f"{sent} automated actions done (mails queued, letters posted), {failed} failed"
    return text + (f", {broken} rules failed (see the log)" if broken else "")
