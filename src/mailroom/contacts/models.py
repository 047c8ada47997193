"""Partners: the people and organisations mail is exchanged with."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.timezone import now

from mailroom.chatter.models import MailThread
from mailroom.core.models import LANGUAGE_CHOICES, TIMEZONE_CHOICES, PostalAddress
from mailroom.core.scoping import CompanyOwned
from mailroom.lib.addresses import InvalidAddress, format_mailbox, normalize_email


class PartnerTag(CompanyOwned):
    name = models.CharField(max_length=60)
    color = models.CharField(max_length=7, default="#6e7781")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="partnertag_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class Partner(MailThread, PostalAddress, CompanyOwned):
    class Kind(models.TextChoices):
        PERSON = "person", "Person"
        ORGANISATION = "organisation", "Organisation"

    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.PERSON)
    name = models.CharField(max_length=200)
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="members",
        limit_choices_to={"kind": "organisation"}, verbose_name="organisation",
    )
    email = models.CharField(max_length=254, blank=True, db_index=True)
    phone = models.CharField(max_length=50, blank=True)
    language = models.CharField(max_length=10, choices=LANGUAGE_CHOICES, default="en_US")
    timezone = models.CharField(max_length=64, choices=TIMEZONE_CHOICES, default="UTC")
    tags = models.ManyToManyField(PartnerTag, blank=True, related_name="partners")
    is_blacklisted = models.BooleanField("blacklisted", default=False)
    bounce_count = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now, editable=False)
    # set on the contact that stands for an office user in this company (one per company):
    # followers and notifications are contacts, so this is how a user follows a record
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                             blank=True, related_name="partners", editable=False)

    tracked_fields = ("name", "email", "parent", "is_blacklisted")

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["company", "email"])]
        constraints = [
            models.UniqueConstraint(fields=["company", "user"], name="partner_one_per_user",
                                    condition=models.Q(user__isnull=False)),
        ]

    @property
    def is_internal(self) -> bool:
        """An office user of the company (not a customer or supplier)."""
        return self.user_id is not None

    def __str__(self) -> str:
        if self.parent_id and self.kind == self.Kind.PERSON:
            return f"{self.parent.name}, {self.name}"
        return self.name

    def clean(self) -> None:
        if self.email:
            try:
                self.email = normalize_email(self.email)
            except InvalidAddress as exc:
                raise ValidationError({"email": str(exc)}) from exc
        if self.parent_id:
            if self.parent_id == self.pk:
                raise ValidationError({"parent": "A contact cannot be its own organisation."})
            if self.parent.company_id != self.company_id:
                raise ValidationError({"parent": "The organisation belongs to another company."})

    @property
    def email_formatted(self) -> str:
        return format_mailbox(self.name, self.email) if self.email else ""
