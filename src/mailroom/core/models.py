"""Companies, users with roles, the audit log, cron jobs and API keys."""

from __future__ import annotations

import zoneinfo

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.core.validators import RegexValidator
from django.db import models
from django.utils.timezone import now
from django_countries.fields import CountryField

from mailroom.core.roles import Role

LANGUAGE_CHOICES = [
    ("en_US", "English (US)"),
    ("en_GB", "English (UK)"),
    ("fr_FR", "French"),
    ("de_DE", "German"),
    ("es_ES", "Spanish"),
    ("it_IT", "Italian"),
    ("nl_NL", "Dutch"),
    ("pt_BR", "Portuguese (Brazil)"),
    ("ar_001", "Arabic"),
    ("hi_IN", "Hindi"),
    ("ja_JP", "Japanese"),
    ("zh_CN", "Chinese (Simplified)"),
]
TIMEZONE_CHOICES = [(name, name) for name in sorted(zoneinfo.available_timezones())]
hex_colour = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a colour like #1f6feb.")


class PostalAddress(models.Model):
    """The address fields shared by companies and contacts (letters print them)."""

    street = models.CharField(max_length=200, blank=True)
    street2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    state = models.CharField("state / region", max_length=100, blank=True)
    zip = models.CharField("postcode", max_length=20, blank=True)
    country = CountryField(blank=True)

    class Meta:
        abstract = True

    @property
    def address_lines(self) -> list[str]:
        city_line = " ".join(part for part in (self.zip, self.city) if part)
        if self.state:
            city_line = f"{city_line}, {self.state}" if city_line else self.state
        lines = [self.street, self.street2, city_line, self.country.name if self.country else ""]
        return [line for line in lines if line]


class Company(PostalAddress):
    name = models.CharField(max_length=200, unique=True)
    logo = models.ImageField(upload_to="logos/", blank=True)
    primary_color = models.CharField(max_length=7, default="#1f6feb", validators=[hex_colour])
    secondary_color = models.CharField(max_length=7, default="#0d1117", validators=[hex_colour])
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=50, blank=True)
    website = models.URLField(blank=True)
    language = models.CharField(max_length=10, choices=LANGUAGE_CHOICES, default="en_US")
    timezone = models.CharField(max_length=64, choices=TIMEZONE_CHOICES, default="UTC")
    currency = models.CharField(max_length=3, default="EUR")
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        verbose_name_plural = "companies"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MailroomUserManager(UserManager):
    pass


class NotifyBy(models.TextChoices):
    EMAIL = "email", "By email"
    INBOX = "inbox", "In Mailroom only"


class User(AbstractUser):
    """An office user. Belongs to one or more companies and works in one at a time."""

    companies = models.ManyToManyField(Company, related_name="users", blank=True)
    current_company = models.ForeignKey(
        Company, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    language = models.CharField(max_length=10, choices=LANGUAGE_CHOICES, default="en_US")
    timezone = models.CharField(max_length=64, choices=TIMEZONE_CHOICES, default="UTC")
    notify_by = models.CharField(
        "notifications", max_length=8, choices=NotifyBy.choices, default=NotifyBy.EMAIL,
        help_text="Messages on records you follow, mentions and activities: by email as well "
                  "as in your Mailroom inbox, or only in the inbox.")

    last_seen_at = models.DateTimeField(
        "last seen", null=True, blank=True, editable=False,
        help_text="Last time the user used Mailroom (updated at most every few minutes).")

    objects = MailroomUserManager()

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    def company_ids(self) -> list[int]:
        cached = getattr(self, "_company_ids", None)
        if cached is None:
            cached = list(self.companies.values_list("id", flat=True))
            self._company_ids = cached
        return cached

    def forget_companies(self) -> None:
        self._company_ids = None

    def role_names(self) -> set[str]:
        cached = getattr(self, "_role_names", None)
        if cached is None:
            cached = set(self.groups.values_list("name", flat=True))
            self._role_names = cached
        return cached

    def has_role(self, role: Role) -> bool:
        """Administrators (and superusers) hold every role."""
        if not self.is_active:
            return False
        if self.is_superuser:
            return True
        names = self.role_names()
        return role.value in names or Role.ADMINISTRATOR.value in names

    @property
    def roles_display(self) -> str:
        return ", ".join(sorted(self.role_names())) or "—"


class AuditLog(models.Model):
    """Append-only record of configuration changes, written only by services."""

    created_at = models.DateTimeField(default=now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    company = models.ForeignKey(
        Company, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name or 'system'} {self.action}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("The audit log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("The audit log is append-only.")


class CronJob(models.Model):
    """A periodic job. `next_run_at` doubles as the claim token: a worker runs a job only
    if its conditional UPDATE moved `next_run_at` forward, so each run happens once."""

    name = models.CharField(max_length=100, unique=True)
    task = models.CharField(max_length=100, help_text="Registered task name.")
    schedule = models.CharField(
        max_length=100,
        help_text='"@every 30s", "@every 5m", "@every 1h" or a crontab line "0 9 * * 1".',
    )
    enabled = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(default=now, db_index=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_result = models.TextField(blank=True)
    last_ok = models.BooleanField(null=True)
    run_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["name"]
        verbose_name = "scheduled job"

    def __str__(self) -> str:
        return self.name


class CronRun(models.Model):
    """One execution of a job; unique per scheduled slot so a double run cannot hide."""

    job = models.ForeignKey(CronJob, on_delete=models.CASCADE, related_name="runs")
    scheduled_for = models.DateTimeField()
    started_at = models.DateTimeField(default=now)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=100)
    ok = models.BooleanField(null=True)
    result = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["job", "scheduled_for"], name="cronrun_once_per_slot")
        ]


class ApiKey(models.Model):
    """A per-user API key. Only a SHA-256 of the secret is stored; the prefix finds the row."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class LockedLogin(AccessAttempt):
    """django-axes' failed sign-ins, under the name the back office shows (no table)."""

    class Meta:
        proxy = True
        verbose_name = "locked login"
        verbose_name_plural = "locked logins"


class KeyFingerprint(models.Model):
    """A fingerprint of one key the installation's nodes share (core.keyring): never the key.

    `kind` is "secret" (MAILROOM_SECRET_KEY), "token" (the VERP/reply-token signing key
    derived from it) or "fernet" (one row per Fernet key ever accepted). `primary_at` is
    when a node last started with this Fernet key first in its list; the latest is the
    installation's current primary."""

    kind = models.CharField(max_length=16)
    fingerprint = models.CharField(max_length=64)
    recorded_at = models.DateTimeField(default=now)
    last_seen_at = models.DateTimeField(default=now)
    primary_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "fingerprint"],
                                               name="core_key_fingerprint_unique")]

    def __str__(self) -> str:
        return f"{self.kind} {self.fingerprint[:12]}…"
