"""Helpdesk tickets: customer requests, usually opened by mail to the support alias."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from mailroom.business.company_checks import check_company
from mailroom.business.numbering import Numbered
from mailroom.chatter.models import MailThread
from mailroom.core.scoping import CompanyOwned
from mailroom.lib.addresses import InvalidAddress, normalize_email


class Ticket(Numbered, MailThread, CompanyOwned):
    class Stage(models.TextChoices):
        NEW = "new", "New"
        IN_PROGRESS = "in_progress", "In progress"
        ON_HOLD = "on_hold", "On hold"
        SOLVED = "solved", "Solved"
        CANCELLED = "cancelled", "Cancelled"

    class Priority(models.TextChoices):
        LOW = "0", "Low"
        MEDIUM = "1", "Medium"
        HIGH = "2", "High"
        URGENT = "3", "Urgent"

    CLOSED_STAGES = (Stage.SOLVED, Stage.CANCELLED)

    name = models.CharField("subject", max_length=200)
    description = models.TextField(blank=True)
    partner = models.ForeignKey("contacts.Partner", on_delete=models.SET_NULL, null=True,
                                blank=True, related_name="tickets", verbose_name="customer")
    email = models.CharField("customer email", max_length=254, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                             blank=True, related_name="+", verbose_name="assigned to")
    priority = models.CharField(max_length=1, choices=Priority.choices, default=Priority.LOW)
    stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.NEW)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)

    tracked_fields = ("stage", "user", "priority", "partner")
    ref_format = "HD-{number:05d}"

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["company", "ref"], name="helpdesk_ticket_unique_ref")
        ]
        indexes = [models.Index(fields=["company", "stage"])]

    def __str__(self) -> str:
        return f"{self.ref} {self.name}" if self.ref else self.name

    def clean(self) -> None:
        errors = {}
        if not self.email and self.partner_id:
            self.email = self.partner.email
        # The contact's own address was checked when the contact was saved.
        if self.email and not (self.partner_id and self.email == self.partner.email):
            try:
                self.email = normalize_email(self.email)
            except InvalidAddress as exc:
                errors["email"] = str(exc)
        # Derived here so every writer (form, API, mail router) keeps it right.
        if self.stage in self.CLOSED_STAGES:
            self.closed_at = self.closed_at or timezone.now()
        else:
            self.closed_at = None
        check_company(self, related=("partner",), extra=errors)

    @property
    def is_closed(self) -> bool:
        return self.stage in self.CLOSED_STAGES
