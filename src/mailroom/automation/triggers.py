"""Firing rules: on create and on entering a state (from chatter's `record_saved`, inside the
business transaction), and for dates (from the hourly task in tasks.py).

Why inside the business transaction: the automated mail is queued durably with the change
that caused it; a confirmation that rolls back sends nothing, a committed one is never
without its mail. Why each firing in its own savepoint: a broken template must never block
the business change; its rows are undone, a note on the record's chatter and the rule's
`last_error` say what went wrong, and the change commits.

Exactly once: each firing first inserts its AutomationRun, unique per (rule, record, event).
A second save, a second cron run or a second worker meets that row and sends nothing; on
PostgreSQL a concurrent insert waits for the first transaction and then fails the same way.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from mailroom.automation.actions import get_action
from mailroom.automation.models import AutomationRule, AutomationRun
from mailroom.automation.rule_cache import rules_for_saves
from mailroom.chatter.services import log_note
from mailroom.core import record_types
from mailroom.core.automatic import is_suppressed
from mailroom.lib.sandbox import TemplateError
from mailroom.outgoing.models import OutgoingMail

log = logging.getLogger("mailroom.automation")
Trigger = AutomationRule.Trigger


# --- which event, if any ---------------------------------------------------------------------

def _value(record: models.Model, name: str) -> str:
    field = record._meta.get_field(name)
    value = getattr(record, field.attname)
    return "" if value is None else str(value)


def matches(rule: AutomationRule, record: models.Model) -> bool:
    """Does the record meet the rule's conditions ({"state": ["posted"]})?"""
    for name, values in (rule.conditions or {}).items():
        value = getattr(record, record._meta.get_field(name).attname)
        if isinstance(value, bool):
            if value not in values:
                return False
        elif str(value) not in {str(v) for v in values}:
            return False
    return True


def event_for(rule: AutomationRule, record: models.Model, created: bool,
              changes: dict[str, tuple]) -> str | None:
    """"created", "state:stage=interview" or None when the save is no event for the rule.

    A record created directly in the rule's state enters it too. The event names the value,
    so a rule mails once per record and state, even if the record leaves and comes back:
    customers never get the same confirmation twice.
    """
    if rule.trigger == Trigger.CREATED:
        return "created" if created else None
    if rule.trigger == Trigger.STATE:
        field = rule.state_field
        entered = (created and _value(record, field) == rule.state_value) or (
            field in changes and str(changes[field][1]) == rule.state_value)
        return f"state:{field}={rule.state_value}" if entered else None
    return None


def on_record_saved(sender, record, created: bool, changes: dict, actor=None,
                    **kwargs) -> None:
    """Receiver of chatter.services.record_saved: fire the company's matching rules."""
    if is_suppressed(record):
        return
    record_type = record_types.for_model(sender)
    company_id = getattr(record, "company_id", None)
    if record_type is None or company_id is None:
        return
    if not created and not changes:
        return
    for candidate in rules_for_saves(company_id, record_type.key):
        event = event_for(candidate, record, created, changes)
        if event is None or not matches(candidate, record):
            continue
        # the cache decides whether; the rule as it is now (and its template) does the act
        rule = (AutomationRule.objects.select_related("template")
                .filter(pk=candidate.pk, active=True).first())
        if rule is not None:
            fire(rule, record, event)


# --- acting ------------------------------------------------------------------------------------

def idempotency_key(rule: AutomationRule, record: models.Model, event: str) -> str:
    return f"auto:{rule.pk}:{record._meta.label_lower}:{record.pk}:{event}"[:200]


def _run_action(rule: AutomationRule, record: models.Model, key: str) -> models.Model:
    """The rule's action (automation.actions), checked again at firing time: an app that
    registered it may be gone, or the rule may have lost its template since."""
    try:
        action = get_action(rule.action)
    except LookupError:
        raise ValidationError(f"the action “{rule.action}” is not available.") from None
    if action.template == "required" and rule.template_id is None:
        raise ValidationError("the rule has no template to send.")
    return action.run(rule, record, key)


def _reason(exc: Exception) -> str:
    if isinstance(exc, TemplateError):
        return str(exc)
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return f"an unexpected error ({type(exc).__name__}); the log has the details."


def _noun(rule: AutomationRule) -> str:
    try:
        return get_action(rule.action).noun
    except LookupError:
        return "action"


def _report(rule: AutomationRule, record: models.Model, reason: str) -> None:
    log_note(record, actor=None,
             body_text=f"Automated {_noun(rule)} “{rule.name}” could not be sent: {reason}")
    AutomationRule.objects.filter(pk=rule.pk).update(last_error=reason[:4000],
                                                     last_error_at=timezone.now())


def fire(rule: AutomationRule, record: models.Model, event: str) -> AutomationRun | None:
    """Run the rule's action for the record once for `event`. Returns the run, or None when
    this event already fired. Never raises for a render or validation failure."""
    content_type = ContentType.objects.get_for_model(record, for_concrete_model=True)
    try:
        with transaction.atomic():
            run = AutomationRun.objects.create(rule=rule, company_id=record.company_id,
                                               content_type=content_type,
                                               object_id=record.pk, event=event[:120])
    except IntegrityError:
        return None  # already fired for this event
    try:
        with transaction.atomic():
            outcome = _run_action(rule, record, idempotency_key(rule, record, event))
    except Exception as exc:  # the business change must commit whatever the template does
        if not isinstance(exc, (TemplateError, ValidationError)):
            log.exception("automation rule %s failed for %s %s", rule.pk,
                          record._meta.label_lower, record.pk)
        reason = _reason(exc)
        run.error = reason
        run.save(update_fields=["error"])
        _report(rule, record, reason)
        return run
    if isinstance(outcome, OutgoingMail):
        run.mail = outcome
    if outcome is not None:
        run.outcome_type = ContentType.objects.get_for_model(outcome)
        run.outcome_id = outcome.pk
    run.save(update_fields=["mail", "outcome_type", "outcome_id"])
    return run


# --- date rules --------------------------------------------------------------------------------

def company_today(company, now: datetime | None = None) -> date:
    try:
        zone = ZoneInfo(getattr(company, "timezone", "") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return (now or timezone.now()).astimezone(zone).date()


def target_date(rule: AutomationRule, today: date) -> date:
    """A rule "3 days before due_date" looks for records due on today + 3."""
    step = timedelta(days=rule.days)
    return today + step if rule.when == AutomationRule.When.BEFORE else today - step


def due_records(rule: AutomationRule, day: date) -> models.QuerySet:
    """The rule's company's records whose date field falls on `day` (in the company's time
    zone for date-times) and that meet its conditions."""
    model = record_types.get(rule.record_type).model
    field = model._meta.get_field(rule.date_field)
    queryset = model.objects.filter(company_id=rule.company_id)
    for name, values in (rule.conditions or {}).items():
        queryset = queryset.filter(**{f"{name}__in": values})
    if isinstance(field, models.DateTimeField):
        try:
            zone = ZoneInfo(rule.company.timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        start = datetime.combine(day, time.min, tzinfo=zone)
        return queryset.filter(**{f"{field.name}__gte": start,
                                  f"{field.name}__lt": start + timedelta(days=1)})
    return queryset.filter(**{field.name: day})


def run_date_rule(rule: AutomationRule, now: datetime | None = None) -> tuple[int, int]:
    """Fire the rule for every due record not yet handled for that date; one transaction
    per record, so one failure never stops the others. Returns (sent, failed)."""
    now = now or timezone.now()
    day = target_date(rule, company_today(rule.company, now))
    event = f"date:{rule.date_field}={day.isoformat()}"
    model = record_types.get(rule.record_type).model
    content_type = ContentType.objects.get_for_model(model, for_concrete_model=True)
    done = set(AutomationRun.objects.filter(rule=rule, content_type=content_type,
                                            event=event).values_list("object_id", flat=True))
    sent = failed = 0
    for record in due_records(rule, day).order_by("pk"):
        if record.pk in done:
            continue
        with transaction.atomic():
            run = fire(rule, record, event)
        if run is not None:
            sent, failed = (sent, failed + 1) if run.error else (sent + 1, failed)
    AutomationRule.objects.filter(pk=rule.pk).update(last_run_at=now)
    return sent, failed
