"""Automations: "when a <record type> is created / enters <state> / has a date N days away,
<action>" — send <template> by email (built in) or any action an upper app registers in
`automation.actions` (letters: post the record's document with the template as a reminder).

A rule belongs to one company. Each time it fires for a record it writes one AutomationRun,
unique per (rule, record, event): that row is the claim that makes a rule send once per event
even when the same change is saved twice or several workers run the date task at once.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.db import models
from django.utils.timezone import now

from mailroom.core import record_types
from mailroom.core.scoping import CompanyQuerySet


class AutomationRule(models.Model):
    class Trigger(models.TextChoices):
        CREATED = "created", "When a record is created"
        STATE = "state", "When a record enters a state"
        DATE = "date", "When a date is N days away (or past)"

    class When(models.TextChoices):
        BEFORE = "before", "days before the date"
        AFTER = "after", "days after the date"

    company = models.ForeignKey("core.Company", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200, help_text="e.g. “Remind customers 3 days before "
                                                      "an invoice is due”.")
    record_type = models.CharField("applies to", max_length=64)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.CREATED)
    state_field = models.CharField(max_length=64, blank=True,
                                   help_text="For “enters a state”: the field, e.g. stage.")
    state_value = models.CharField(max_length=64, blank=True,
                                   help_text="For “enters a state”: the value, e.g. interview.")
    date_field = models.CharField(max_length=64, blank=True,
                                  help_text="For dates: the date field, e.g. due_date.")
    days = models.PositiveSmallIntegerField(default=0, help_text="For dates: how many days.")
    when = models.CharField(max_length=6, choices=When.choices, default=When.BEFORE)
    conditions = models.JSONField(
        default=dict, blank=True,
        help_text='Only records whose fields have these values, e.g. {"state": ["posted"], '
                  '"payment_state": ["not_paid", "partial"]}.')
    # a key of automation.actions; no database choices: apps add actions without migrations
    action = models.CharField(max_length=40, default="email",
                              help_text="What the rule does when it fires.")
    template = models.ForeignKey("templating.EmailTemplate", on_delete=models.PROTECT,
                                 related_name="+", null=True, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False,
                                       help_text="When the date task last checked this rule.")
    last_error = models.TextField(blank=True, editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = CompanyQuerySet.as_manager()

    class Meta:
        ordering = ["record_type", "name"]
        verbose_name = "automation rule"
        constraints = [models.UniqueConstraint(fields=["company", "name"],
                                               name="automation_rule_name_unique")]
        indexes = [models.Index(fields=["company", "record_type", "active"])]

    def __str__(self) -> str:
        return self.name

    @property
    def record_type_label(self) -> str:
        try:
            return record_types.get(self.record_type).label
        except LookupError:
            return self.record_type

    @property
    def action_label(self) -> str:
        from mailroom.automation.actions import label_of  # actions imports templating

        return label_of(self.action)

    def describe_trigger(self) -> str:
        """The rule in words, for lists and chatter notes."""
        if self.trigger == self.Trigger.STATE:
            return f"{self.state_field} becomes {self.state_value}"
        if self.trigger == self.Trigger.DATE:
            if self.days == 0:
                return f"on the {self.date_field.replace('_', ' ')}"
            return f"{self.days} {self.get_when_display()} ({self.date_field})"
        return "created"


class AutomationRun(models.Model):
    """One firing of a rule for one record and event (created, state:stage=interview,
    date:due_date=2025-06-01): what its action made (`outcome`: the queued mail, the
    letter; `mail` too for emails), or why it could not."""

    rule = models.ForeignKey(AutomationRule, on_delete=models.CASCADE, related_name="runs")
    company = models.ForeignKey("core.Company", on_delete=models.CASCADE, related_name="+")
    content_type = models.ForeignKey("contenttypes.ContentType", on_delete=models.CASCADE,
                                     related_name="+")
    object_id = models.PositiveBigIntegerField()
    event = models.CharField(max_length=120)
    mail = models.ForeignKey("outgoing.OutgoingMail", on_delete=models.SET_NULL, null=True,
                             blank=True, related_name="+")
    outcome_type = models.ForeignKey("contenttypes.ContentType", on_delete=models.SET_NULL,
                                     null=True, blank=True, related_name="+")
    outcome_id = models.PositiveBigIntegerField(null=True, blank=True)
    outcome = GenericForeignKey("outcome_type", "outcome_id")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=now)

    objects = CompanyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(
            fields=["rule", "content_type", "object_id", "event"], name="automation_run_once")]
        indexes = [models.Index(fields=["rule", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.rule} · {self.event}"

    @property
    def ok(self) -> bool:
        return not self.error and (self.mail_id is not None or self.outcome_id is not None)
