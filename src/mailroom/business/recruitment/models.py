"""Recruitment: job positions and the applicants who write in for them."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from mailroom.business.company_checks import check_company
from mailroom.chatter.models import MailThread
from mailroom.core.scoping import CompanyOwned
from mailroom.lib.addresses import InvalidAddress, normalize_email


class JobPosition(MailThread, CompanyOwned):
    name = models.CharField("job position", max_length=200)
    description = models.TextField(blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                             blank=True, related_name="+", verbose_name="recruiter")
    active = models.BooleanField("open", default=True,
                                 help_text="Closed positions stay for history but take no "
                                           "new applicants.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    tracked_fields = ("name", "user", "active")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="jobposition_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        check_company(self)


class Applicant(MailThread, CompanyOwned):
    class Stage(models.TextChoices):
        NEW = "new", "New"
        SCREENING = "screening", "Screening"
        INTERVIEW = "interview", "Interview"
        CONTRACT_PROPOSAL = "contract_proposal", "Contract proposal"
        HIRED = "hired", "Hired"
        REFUSED = "refused", "Refused"

    # Blank in the form when a contact is picked; `clean` fills it in or asks for it.
    partner_name = models.CharField("applicant name", max_length=200, blank=True)
    email = models.CharField(max_length=254, blank=True)
    phone = models.CharField(max_length=50, blank=True)
    job = models.ForeignKey(JobPosition, on_delete=models.PROTECT, null=True, blank=True,
                            related_name="applicants", verbose_name="job position")
    partner = models.ForeignKey("contacts.Partner", on_delete=models.SET_NULL, null=True,
                                blank=True, related_name="applications", verbose_name="contact")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                             blank=True, related_name="+", verbose_name="recruiter")
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.NEW)
    salary_expected = models.DecimalField("expected salary", max_digits=12, decimal_places=2,
                                          null=True, blank=True,
                                          validators=[MinValueValidator(Decimal("0"))])
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    tracked_fields = ("stage", "job", "user", "salary_expected")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["company", "stage"])]

    def __str__(self) -> str:
        return f"{self.partner_name} ({self.job.name})" if self.job_id else self.partner_name

    def clean(self) -> None:
        errors = {}
        if self.partner_id:
            self.email = self.email or self.partner.email
        # The contact's own address was checked when the contact was saved.
        if self.email and not (self.partner_id and self.email == self.partner.email):
            try:
                self.email = normalize_email(self.email)
            except InvalidAddress as exc:
                errors["email"] = str(exc)
        if self.partner_id:
            self.partner_name = self.partner_name or self.partner.name
            self.phone = self.phone or self.partner.phone
        if not self.partner_name.strip():
            errors["partner_name"] = "Give the applicant's name or pick a contact."
        if self.job_id and not self.job.active and self._state.adding:
            errors["job"] = "This position is closed."
        check_company(self, related=("job", "partner"), extra=errors)
