"""Where inbound mail may go: alias domains, aliases on them, and allowed senders.

An AliasDomain is an email domain a company receives on (example.com); an Alias is a local
part on it that turns mail into records of one type (sales@ → Lead). AllowedSender entries
("Mail Gateway Allowed") let a sender past the flood limit, and are the only senders an alias
or domain in allowlist-only mode accepts.
"""

from __future__ import annotations

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.validators import RegexValidator
from django.db import models
from django.utils.timezone import now

from mailroom.core.scoping import CompanyOwned

local_part_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9._-]{0,62})$",
    "Use lowercase letters, digits, dots, dashes or underscores (no '+'), like 'support'.",
)
domain_validator = RegexValidator(
    r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$",
    "Enter a domain name such as 'example.com' (lowercase, no '@').",
)


class AliasDomain(CompanyOwned):
    """An email domain whose mail Mailroom receives, with its special addresses."""

    name = models.CharField("domain", max_length=253, unique=True, validators=[domain_validator])
    bounce_alias = models.CharField(
        max_length=64, default="bounce", validators=[local_part_validator],
        help_text="Envelope sender of outgoing mail; delivery reports come back here.")
    catchall_alias = models.CharField(
        max_length=64, default="catchall", validators=[local_part_validator],
        help_text="Reply-To of mail sent from records; replies find their record here.")
    default_from = models.CharField(
        max_length=64, default="notifications", validators=[local_part_validator],
        help_text="Sender of notifications when the author has no address on this domain.")
    accept_unknown = models.BooleanField(
        "catch all unknown addresses", default=False,
        help_text="Take mail for any address on the domain instead of refusing unknown ones "
                  "at RCPT; it goes to the catch-all route.")
    allowlist_only = models.BooleanField(
        default=False, help_text="Accept mail only from allowed senders.")
    sequence = models.PositiveIntegerField(default=10)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["sequence", "name"]

    def __str__(self) -> str:
        return self.name

    def address(self, local: str) -> str:
        return f"{local}@{self.name}"

    @property
    def bounce_email(self) -> str:
        return self.address(self.bounce_alias)

    @property
    def catchall_email(self) -> str:
        return self.address(self.catchall_alias)

    @property
    def default_from_email(self) -> str:
        return self.address(self.default_from)


class Alias(CompanyOwned):
    """An address that turns mail into records of one type, or appends it to one record."""

    class ContactPolicy(models.TextChoices):
        EVERYONE = "everyone", "Everyone"
        PARTNERS = "partners", "Known contacts"
        FOLLOWERS = "followers", "Followers of the record"
        INTERNAL = "internal", "Internal users"

    class Status(models.TextChoices):
        NOT_TESTED = "not_tested", "Not tested"
        VALID = "valid", "Valid"
        INVALID = "invalid", "Invalid"

    domain = models.ForeignKey(AliasDomain, on_delete=models.PROTECT, related_name="aliases")
    local_part = models.CharField(max_length=64, validators=[local_part_validator])
    record_type = models.CharField(
        max_length=100, help_text="Mail to this alias creates records of this type.")
    defaults = models.JSONField(
        "default values", default=dict, blank=True,
        help_text='Field values for new records, e.g. {"priority": "high"}.')
    # force thread: everything goes onto this record instead of creating new ones
    thread_content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    thread_object_id = models.PositiveBigIntegerField(null=True, blank=True)
    thread = GenericForeignKey("thread_content_type", "thread_object_id")
    # the record the alias belongs to (a project for its tasks@): its followers may write
    parent_content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    parent_object_id = models.PositiveBigIntegerField(null=True, blank=True)
    parent = GenericForeignKey("parent_content_type", "parent_object_id")
    contact_policy = models.CharField(
        "who may write", max_length=10, choices=ContactPolicy.choices,
        default=ContactPolicy.EVERYONE)
    allowlist_only = models.BooleanField(
        default=False, help_text="Accept mail only from allowed senders.")
    bounce_message = models.TextField(
        blank=True, help_text="Sent (once) to a refused sender. Empty: a standard text.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NOT_TESTED)
    last_error = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["domain__name", "local_part"]
        verbose_name_plural = "aliases"
        constraints = [
            models.UniqueConstraint(fields=["domain", "local_part"], name="alias_unique_address"),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def email(self) -> str:
        return f"{self.local_part}@{self.domain.name}" if self.domain_id else self.local_part

    @property
    def forces_thread(self) -> bool:
        return bool(self.thread_content_type_id and self.thread_object_id)


class AllowedSender(CompanyOwned):
    """A trusted sender ("Mail Gateway Allowed"): an address or a whole domain.

    Scoped to one alias, one alias domain, or (both empty) the whole company.
    """

    pattern = models.CharField(
        max_length=254, help_text="An address (anna@partner.com) or a domain (partner.com).")
    alias = models.ForeignKey(Alias, on_delete=models.CASCADE, null=True, blank=True,
                              related_name="allowed_senders")
    alias_domain = models.ForeignKey(AliasDomain, on_delete=models.CASCADE, null=True,
                                     blank=True, related_name="allowed_senders")
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["pattern"]
        indexes = [models.Index(fields=["company", "pattern"])]

    def __str__(self) -> str:
        return self.pattern

    @property
    def is_domain(self) -> bool:
        return "@" not in self.pattern

    def matches(self, address: str) -> bool:
        address = address.lower()
        if self.is_domain:
            domain = address.rpartition("@")[2]
            return domain == self.pattern or domain.endswith("." + self.pattern)
        return address == self.pattern
