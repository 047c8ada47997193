"""Digest emails (the business at a glance, once per period) and digest tips.

- Digest: per company, its recipients (DigestSubscription: a user may opt out), its
  periodicity and send time in the company's timezone, the KPIs it shows (keys of the
  core.kpis registry, custom ones included) and when it runs next.
- DigestSend: one row per digest, recipient and period actually emailed. A unique constraint
  on (digest, user, period_start) for scheduled sends is what makes "exactly once per period"
  true across any number of workers; the mail is queued in the same transaction.
- Tip, TipTranslation, TipView: advice shown one per digest email, rotated per user, with
  the numbers that say whether a tip helps (shown, clicked, useful yes/no).
- CustomKpi: a KPI a company defines in the UI from a record type, a date field, an
  aggregate and a filter — no code.
"""

from __future__ import annotations

from datetime import time, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from mailroom.chatter.models import MailThread
from mailroom.core.models import LANGUAGE_CHOICES
from mailroom.core.scoping import CompanyOwned, CompanyQuerySet


class Periodicity(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"
    QUARTERLY = "quarterly", "Quarterly"


# The slow-down ladder: when nobody opened Mailroom for a while, send less often.
SLOWER = {Periodicity.DAILY: Periodicity.WEEKLY, Periodicity.WEEKLY: Periodicity.MONTHLY,
          Periodicity.MONTHLY: Periodicity.QUARTERLY}
# Nobody of the recipients seen in Mailroom for this long: send less often.
SLOWDOWN_AFTER = {Periodicity.DAILY: timedelta(days=2), Periodicity.WEEKLY: timedelta(days=7),
                  Periodicity.MONTHLY: timedelta(days=30)}


class Digest(MailThread, CompanyOwned):
    name = models.CharField(max_length=200)
    periodicity = models.CharField(max_length=10, choices=Periodicity.choices,
                                   default=Periodicity.WEEKLY)
    send_time = models.TimeField(
        default=time(8, 0),
        help_text="Local time in the company's timezone when the digest goes out.")
    kpis = models.JSONField(default=list, blank=True,
                            help_text="Keys of the KPIs shown, in order.")
    active = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(
        null=True, blank=True, editable=False,
        help_text="When the next scheduled digest goes out (computed).")
    # slow-down: what the periodicity was before Mailroom made it slower, and whether the next
    # email must still say so
    slowed_from = models.CharField(max_length=10, choices=Periodicity.choices, blank=True,
                                   editable=False)
    slowed_at = models.DateTimeField(null=True, blank=True, editable=False)
    slowdown_notice = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    tracked_fields = ("name", "periodicity", "active")

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="digest_unique_name"),
        ]
        indexes = [models.Index(fields=["active", "next_run_at"])]

    def __str__(self) -> str:
        return self.name


class DigestSubscription(models.Model):
    """A recipient of a digest. Unsubscribing keeps the row (when and how) for the record."""

    class Source(models.TextChoices):
        ADMIN = "admin", "Added by an administrator"
        SELF = "self", "Subscribed in preferences"
        UNSUBSCRIBE_LINK = "link", "One-click unsubscribe"

    digest = models.ForeignKey(Digest, on_delete=models.CASCADE, related_name="subscriptions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="digest_subscriptions")
    subscribed = models.BooleanField(default=True)
    changed_at = models.DateTimeField(default=timezone.now)
    changed_by = models.CharField(max_length=8, choices=Source.choices, default=Source.ADMIN)

    class Meta:
        ordering = ["digest", "user"]
        constraints = [
            models.UniqueConstraint(fields=["digest", "user"], name="digest_subscription_once"),
        ]

    def __str__(self) -> str:
        return f"{self.user} – {self.digest}"


class DigestSend(models.Model):
    """One digest emailed to one user for one period."""

    class Kind(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        MANUAL = "manual", "Sent now"

    digest = models.ForeignKey(Digest, on_delete=models.CASCADE, related_name="sends")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+")
    periodicity = models.CharField(max_length=10, choices=Periodicity.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SCHEDULED)
    mail = models.ForeignKey("outgoing.OutgoingMail", on_delete=models.SET_NULL, null=True,
                             blank=True, related_name="+")
    tip = models.ForeignKey("digests.Tip", on_delete=models.SET_NULL, null=True, blank=True,
                            related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["digest", "user", "period_start"], condition=Q(kind="scheduled"),
                name="digest_send_once_per_period"),
        ]
        indexes = [models.Index(fields=["digest", "period_start"])]


class TipQuerySet(models.QuerySet):
    def for_company(self, company) -> TipQuerySet:
        """Tips a company's users may get: Mailroom's own (no company) and the company's."""
        return self.filter(Q(company__isnull=True) | Q(company=company))


class Tip(models.Model):
    """A short piece of advice. `company` empty: shipped with Mailroom, shown to everyone."""

    company = models.ForeignKey("core.Company", on_delete=models.CASCADE, null=True,
                                blank=True, related_name="+")
    key = models.SlugField(max_length=60, blank=True,
                           help_text="Set on the tips Mailroom ships, so upgrades can update "
                                     "them; empty on your own.")
    title = models.CharField(max_length=200)
    body = models.TextField(
        "description",
        help_text="HTML. May use {{ user.name }} and {{ company.name }}.")
    sequence = models.PositiveIntegerField(default=10)
    roles = models.JSONField(default=list, blank=True,
                             help_text="Roles that get this tip; empty: every user.")
    record_types = models.JSONField(
        default=list, blank=True,
        help_text="Record types the user must be able to see (e.g. invoicing.invoice).")
    active = models.BooleanField(default=True)
    shown_count = models.PositiveIntegerField(default=0, editable=False)
    click_count = models.PositiveIntegerField(default=0, editable=False)
    useful_yes = models.PositiveIntegerField(default=0, editable=False)
    useful_no = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = TipQuerySet.as_manager()

    class Meta:
        ordering = ["sequence", "id"]
        constraints = [
            models.UniqueConstraint(fields=["key"], condition=~Q(key=""),
                                    name="digest_tip_unique_key"),
        ]

    def __str__(self) -> str:
        return self.title


class TipTranslation(models.Model):
    tip = models.ForeignKey(Tip, on_delete=models.CASCADE, related_name="translations")
    language = models.CharField(max_length=10, choices=LANGUAGE_CHOICES)
    title = models.CharField(max_length=200)
    body = models.TextField("description")

    class Meta:
        ordering = ["tip", "language"]
        constraints = [
            models.UniqueConstraint(fields=["tip", "language"], name="digest_tip_one_per_lang"),
        ]


class TipView(models.Model):
    """What one user saw of one tip: drives the rotation and the stats."""

    class Vote(models.TextChoices):
        YES = "yes", "Useful"
        NO = "no", "Not useful"

    tip = models.ForeignKey(Tip, on_delete=models.CASCADE, related_name="views")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+")
    shown_count = models.PositiveIntegerField(default=0)
    last_shown_at = models.DateTimeField(default=timezone.now)
    clicks = models.PositiveIntegerField(default=0)
    vote = models.CharField(max_length=3, choices=Vote.choices, blank=True)
    # sent on its own as a notification: in the user's inbox until they mark it read
    notified_at = models.DateTimeField(null=True, blank=True)
    notice_read = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tip", "user"], name="digest_tip_view_once"),
        ]
        indexes = [models.Index(fields=["user", "last_shown_at"])]


class CustomKpi(CompanyOwned):
    """A KPI defined in the UI: aggregate(record type rows whose date falls in the window)."""

    class Aggregate(models.TextChoices):
        COUNT = "count", "Count of records"
        SUM = "sum", "Sum of a number field"
        AVG = "avg", "Average of a number field"

    name = models.CharField(max_length=120)
    record_type = models.CharField(max_length=60, help_text="e.g. crm.lead")
    date_field = models.CharField(max_length=60,
                                  help_text="The date that puts a record in a period.")
    aggregate = models.CharField(max_length=5, choices=Aggregate.choices,
                                 default=Aggregate.COUNT)
    value_field = models.CharField(max_length=60, blank=True,
                                   help_text="The number summed or averaged.")
    filters = models.JSONField(
        default=list, blank=True,
        help_text='Conditions, all of which must hold: [{"field", "op", "value"}].')
    unit = models.CharField(max_length=10, default="count")
    higher_is_better = models.BooleanField(default=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = CompanyQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "custom KPI"
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="custom_kpi_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def key(self) -> str:
        return f"custom.{self.pk}"
