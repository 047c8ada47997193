"""Postal letters: a record's document printed, enveloped and posted, tracked to the door.

- PostalProvider: who prints and posts a company's letters. "local" is the print room in the
  office (the default, works offline); "pingen" and "lob" post through those services, behind
  the same interface (`letters.providers`). A credit error pauses a provider (`paused_until`).
- Letter: one envelope. It keeps a SNAPSHOT of the postal address at send time, the exact
  final PDF (content-addressed blob) and an idempotency key sent to the provider, so a crash
  between the provider's acceptance and our write never posts a letter twice.
- LetterEvent: the timeline (ours, the provider's, a user's).
- PrintBatch: the local print room's pile for one day and paper: one PDF with a cover sheet
  listing its letters, marked printed and dispatched by a person.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone

from mailroom.core.scoping import CompanyOwned, CompanyQuerySet
from mailroom.core.secrets import EncryptedTextField

# Countries that post on US Letter paper; everyone else uses A4.
LETTER_PAPER_COUNTRIES = frozenset({"US", "CA", "MX", "PH", "CL", "CO", "VE", "GT", "CR",
                                    "PA", "DO", "PR", "SV", "NI", "HN", "BZ"})


class Paper(models.TextChoices):
    A4 = "a4", "A4"
    LETTER = "letter", "US Letter"


class WindowStandard(models.TextChoices):
    # the keys of letters.layout.windows.STANDARDS
    DIN5008_A = "din5008a", "DIN 5008 form A (left window, high)"
    DIN5008_B = "din5008b", "DIN 5008 form B (left window, low)"
    SN010130 = "sn010130", "Swiss SN 010130 (right window)"
    UK = "uk_dl", "UK DL window (left)"
    US10 = "us10", "US #10 window (US Letter)"


def paper_for_country(country_code: str) -> str:
    return Paper.LETTER if (country_code or "").upper() in LETTER_PAPER_COUNTRIES else Paper.A4


def window_for_country(country_code: str) -> str:
    code = (country_code or "").upper()
    if code in {"DE", "AT"}:
        return WindowStandard.DIN5008_B
    if code == "CH":
        return WindowStandard.SN010130
    if code == "GB":
        return WindowStandard.UK
    if code in LETTER_PAPER_COUNTRIES:  # US #10 is the one window standard on US Letter
        return WindowStandard.US10
    return WindowStandard.DIN5008_A


class PostalProvider(CompanyOwned):
    class Kind(models.TextChoices):
        LOCAL = "local", "Local print room"
        PINGEN = "pingen", "Pingen"
        LOB = "lob", "Lob"

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.LOCAL)
    active = models.BooleanField(default=True)
    settings = models.JSONField(
        default=dict, blank=True,
        help_text='Provider options. Local print room: {"cups_queue": "office-laser", '
                  '"price_per_sheet": "0.10", "price_per_letter": "0.85"}. Pingen: '
                  '{"organisation_id": "…", "environment": "production" or "staging"}. Lob: '
                  '{"mail_type": "usps_first_class", "price_per_letter": "1.05"}.')
    credentials = EncryptedTextField(
        blank=True, default="",
        help_text='Encrypted at rest; never shown again. Pingen: {"client_id": "…", '
                  '"client_secret": "…", "webhook_signing_key": "…"}. Lob: {"api_key": '
                  '"live_…", "webhook_secret": "…"}.')
    window_standard = models.CharField(max_length=12, choices=WindowStandard.choices,
                                       default=WindowStandard.DIN5008_A)
    paused_until = models.DateTimeField(null=True, blank=True, editable=False)
    paused_reason = models.CharField(max_length=300, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "postal provider"
        constraints = [
            models.UniqueConstraint(fields=["company", "name"],
                                    name="letters_provider_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name

    def is_paused(self, now=None) -> bool:
        return bool(self.paused_until and self.paused_until > (now or timezone.now()))


class PrintBatch(CompanyOwned):
    class State(models.TextChoices):
        OPEN = "open", "Open"
        PRINTED = "printed", "Printed"
        DISPATCHED = "dispatched", "Dispatched"

    provider = models.ForeignKey(PostalProvider, on_delete=models.PROTECT, related_name="batches")
    day = models.DateField(default=timezone.localdate)
    paper = models.CharField(max_length=8, choices=Paper.choices, default=Paper.A4)
    state = models.CharField(max_length=12, choices=State.choices, default=State.OPEN)
    pdf_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    pdf_size = models.PositiveIntegerField(default=0, editable=False)
    letter_count = models.PositiveIntegerField(default=0, editable=False)
    sheet_count = models.PositiveIntegerField(default=0, editable=False)
    print_error = models.CharField(max_length=500, blank=True, editable=False)
    # bumped whenever a letter joins or leaves; the PDF is rebuilt on demand for the latest
    pdf_revision = models.PositiveIntegerField(default=0, editable=False)
    pdf_built_revision = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    printed_at = models.DateTimeField(null=True, blank=True, editable=False)
    dispatched_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-day", "-id"]
        verbose_name = "print batch"
        verbose_name_plural = "print batches"
        indexes = [models.Index(fields=["provider", "state", "day", "paper"])]
        constraints = [
            # one open pile per print room, day and paper, however many workers add to it
            models.UniqueConstraint(fields=["provider", "day", "paper"],
                                    condition=models.Q(state="open"),
                                    name="letters_one_open_batch"),
        ]

    def __str__(self) -> str:
        return f"Print batch {self.day:%Y-%m-%d} {self.get_paper_display()} #{self.pk}"


class Letter(CompanyOwned):
    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        QUEUED = "queued", "Queued"
        SUBMITTED = "submitted", "Submitted"
        PRINTED = "printed", "Printed"
        DISPATCHED = "dispatched", "Dispatched"
        DELIVERED = "delivered", "Delivered"
        RETURNED = "returned", "Returned to sender"
        ERROR = "error", "Error"
        CANCELLED = "cancelled", "Cancelled"

    class Postage(models.TextChoices):
        STANDARD = "standard", "Standard"
        PRIORITY = "priority", "Priority"
        REGISTERED = "registered", "Registered"

    # the record it belongs to (any registered record type)
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.PositiveBigIntegerField()
    record_label = models.CharField(max_length=200, blank=True,
                                    help_text="The record as it was named when sent.")
    partner = models.ForeignKey("contacts.Partner", on_delete=models.SET_NULL, null=True,
                                blank=True, related_name="letters")
    # the address exactly as printed, frozen at send time
    address_name = models.CharField(max_length=200)
    address_lines = models.JSONField(default=list)
    address_country = models.CharField(max_length=2, blank=True)
    # the same address field by field: name, organisation, street, street2, zip, city, state,
    # country (providers that want structured addresses, such as Lob, get these)
    address_parts = models.JSONField(default=dict, blank=True)
    # what goes in the envelope: [{"name", "sha256", "size", "kind": record|upload|attachment}]
    documents = models.JSONField(default=list, blank=True)
    # options
    color = models.BooleanField(default=False)
    duplex = models.BooleanField(default=True)
    cover_page = models.BooleanField(default=False)
    postage = models.CharField(max_length=12, choices=Postage.choices, default=Postage.STANDARD)
    paper = models.CharField(max_length=8, choices=Paper.choices, default=Paper.A4)
    provider = models.ForeignKey(PostalProvider, on_delete=models.PROTECT, related_name="letters")
    batch = models.ForeignKey(PrintBatch, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="letters", editable=False)
    state = models.CharField(max_length=12, choices=State.choices, default=State.DRAFT)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    error_action = models.CharField("what to do", max_length=500, blank=True)
    provider_ref = models.CharField("provider's id", max_length=120, blank=True)
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    tracking_number = models.CharField(max_length=120, blank=True)
    pages = models.PositiveIntegerField(default=0)
    sheets = models.PositiveIntegerField(default=0)
    pdf_sha256 = models.CharField(max_length=64, blank=True)
    pdf_size = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)
    submitted_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    objects = CompanyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"]),
            models.Index(fields=["content_type", "object_id"]),
        ]

    def __str__(self) -> str:
        return f"Letter to {self.address_name} ({self.record_label or self.object_id})"

    @property
    def record(self) -> models.Model | None:
        model = self.content_type.model_class()
        return None if model is None else model._default_manager.filter(
            pk=self.object_id).first()

    @property
    def record_type(self) -> str:
        return f"{self.content_type.app_label}.{self.content_type.model}"


class LetterEvent(models.Model):
    class Source(models.TextChoices):
        MAILROOM = "mailroom", "Mailroom"
        PROVIDER = "provider", "Provider"
        USER = "user", "User"

    letter = models.ForeignKey(Letter, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=12, choices=Letter.State.choices)
    message = models.CharField(max_length=500, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MAILROOM)
    external_id = models.CharField(max_length=120, blank=True,
                                   help_text="The provider's event id (a replay changes nothing).")

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["letter", "external_id"],
                                    condition=~models.Q(external_id=""),
                                    name="letters_event_once"),
        ]

    def __str__(self) -> str:
        return f"{self.get_state_display()} – {self.message}"
