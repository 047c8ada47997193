"""Mailing lists and who is on them, with the evidence of their consent.

- MailingList: a company's list (public lists will show in the preference centre; double
  opt-in lists take new people as "unconfirmed" until they confirm).
- Subscription: one contact on one list. It keeps a snapshot of the address (normalised,
  lower-case) so later sends and exports do not depend on the contact's current address,
  where the subscription came from and the consent evidence (how, when, from which IP).
  A person who unsubscribed stays unsubscribed: imports never resubscribe them.
- ImportJob: an uploaded CSV/XLSX file (a content-addressed blob) imported into a list by
  the worker in chunks; `done` is the number of data rows already committed, so a crashed
  import resumes where it stopped. ImportBadRow: each refused row with its reason.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from mailroom.core.scoping import CompanyOwned, CompanyQuerySet


class MailingList(CompanyOwned):
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    public = models.BooleanField(
        default=False, help_text="Public lists are offered in the preference centre; private "
                                 "lists are only filled by imports and by the office.")
    double_opt_in = models.BooleanField(
        "double opt-in", default=False,
        help_text="New subscribers stay unconfirmed until they confirm by mail.")
    active = models.BooleanField(default=True, help_text="Archived lists are hidden.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = CompanyQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "mailing list"
        constraints = [
            models.UniqueConstraint(
                fields=["company", "name"], name="campaigns_list_unique_name",
                violation_error_message="This company already has a list with that name."),
        ]

    def __str__(self) -> str:
        return self.name


class Subscription(CompanyOwned):
    class Status(models.TextChoices):
        SUBSCRIBED = "subscribed", "Subscribed"
        UNCONFIRMED = "unconfirmed", "Unconfirmed"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"

    class Source(models.TextChoices):
        IMPORT = "import", "Import"
        API = "api", "API"
        FORM = "form", "Form"
        MANUAL = "manual", "Manual"

    mailing_list = models.ForeignKey(MailingList, on_delete=models.CASCADE,
                                     related_name="subscriptions")
    partner = models.ForeignKey("contacts.Partner", on_delete=models.CASCADE,
                                related_name="subscriptions", verbose_name="contact")
    email = models.CharField(max_length=254, help_text="The address when subscribed "
                                                       "(normalised, lower-case).")
    status = models.CharField(max_length=12, choices=Status.choices,
                              default=Status.SUBSCRIBED)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.MANUAL)
    consent_how = models.CharField("consent: how", max_length=500, blank=True)
    consent_at = models.DateTimeField("consent: when", null=True, blank=True)
    consent_ip = models.GenericIPAddressField("consent: from IP", null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    objects = CompanyQuerySet.as_manager()

    class Meta:
        ordering = ["email", "id"]
        verbose_name = "subscription"
        indexes = [
            models.Index(fields=["mailing_list", "status"]),
            models.Index(fields=["company", "email"]),
        ]
        constraints = [
            models.UniqueConstraint(fields=["mailing_list", "partner"],
                                    name="campaigns_one_subscription"),
        ]

    def __str__(self) -> str:
        return f"{self.email} on {self.mailing_list}"


class ImportJob(CompanyOwned):
    class State(models.TextChoices):
        DRAFT = "draft", "Mapping columns"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "Excel (XLSX)"

    mailing_list = models.ForeignKey(MailingList, on_delete=models.CASCADE,
                                     related_name="imports")
    filename = models.CharField(max_length=255)
    file_format = models.CharField(max_length=4, choices=Format.choices, default=Format.CSV)
    file_sha256 = models.CharField(max_length=64)
    file_size = models.PositiveIntegerField(default=0)
    # {"email": 0, "name": 2, …}: the column index of each field; email is required
    mapping = models.JSONField(default=dict, blank=True)
    has_header = models.BooleanField(default=True)
    consent_how = models.CharField(
        "how they consented", max_length=500,
        help_text="Recorded on every new subscription, e.g. \"Signed up at the trade fair\".")
    state = models.CharField(max_length=8, choices=State.choices, default=State.DRAFT)
    total = models.PositiveIntegerField(default=0, help_text="Data rows in the file.")
    done = models.PositiveIntegerField(default=0, help_text="Data rows committed so far.")
    created = models.PositiveIntegerField(default=0, help_text="New subscriptions.")
    updated = models.PositiveIntegerField(default=0, help_text="Already on the list.")
    contacts_created = models.PositiveIntegerField(default=0)
    bad = models.PositiveIntegerField(default=0, help_text="Rows refused, with a reason.")
    error = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = CompanyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "contact import"
        indexes = [models.Index(fields=["state", "lease_expires_at"])]

    def __str__(self) -> str:
        return f"Import of {self.filename} into {self.mailing_list}"

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if self.state == self.State.DONE else 0
        return min(100, self.done * 100 // self.total)

    @property
    def finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED)


class ImportBadRow(models.Model):
    class Reason(models.TextChoices):
        INVALID = "invalid", "Invalid address"
        DUPLICATE = "duplicate", "Duplicate in the file"
        SUPPRESSED = "suppressed", "Suppressed"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="bad_rows")
    row = models.PositiveIntegerField(help_text="Line in the file (1 is the first line).")
    email = models.CharField(max_length=254, blank=True)
    reason = models.CharField(max_length=12, choices=Reason.choices)
    message = models.CharField(max_length=300)
    values = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["row"]
        constraints = [
            models.UniqueConstraint(fields=["job", "row"], name="campaigns_bad_row_once"),
        ]

    def __str__(self) -> str:
        return f"Row {self.row}: {self.message}"


# campaigns, their recipients and events, the suppression list: a module of their own
from mailroom.campaigns.campaign_models import (  # noqa: E402,F401
    Campaign,
    CampaignEvent,
    CampaignLink,
    CampaignRecipient,
    CampaignTranslation,
    Exclusion,
    Layout,
    Segment,
    Suppression,
)
