"""Email templates: per company or shared, translated, with static and document attachments.

Every text field of a template is a Jinja2 template rendered in the sandbox (lib/sandbox.py)
against plain data (context.py), never against ORM objects.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from mailroom.core import record_types
from mailroom.core.models import LANGUAGE_CHOICES
from mailroom.core.scoping import CompanyQuerySet


class TemplateQuerySet(CompanyQuerySet):
    def for_user(self, user) -> TemplateQuerySet:
        """The user's companies' templates plus the shared ones (no company)."""
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self
        return self.filter(Q(company__isnull=True) | Q(company__in=user.company_ids()))

    def for_current_company(self, user) -> TemplateQuerySet:
        company_id = getattr(user, "current_company_id", None)
        scoped = self.for_user(user)
        if company_id is None:
            return scoped
        return scoped.filter(Q(company__isnull=True) | Q(company_id=company_id))

    def usable_for(self, company, record_type: str) -> TemplateQuerySet:
        return self.filter(Q(company__isnull=True) | Q(company=company),
                           record_type=record_type, active=True)


class EmailTemplate(models.Model):
    class Layout(models.TextChoices):
        BRANDED = "branded", "Branded: logo, colours and footer"
        PLAIN = "plain", "Plain: a simple readable frame"
        NONE = "none", "None: the body exactly as written"

    company = models.ForeignKey("core.Company", on_delete=models.PROTECT, null=True, blank=True,
                                related_name="+",
                                help_text="Empty: shared by every company.")
    name = models.CharField(max_length=200, help_text="A unique, descriptive name, e.g. "
                            "“Quotation: send to customer”.")
    description = models.TextField(blank=True)
    record_type = models.CharField("applies to", max_length=64)
    subject = models.CharField(max_length=998, blank=True)
    body_html = models.TextField("body", blank=True)
    email_from = models.CharField("from", max_length=320, blank=True,
                                  help_text="Empty: the sending user, else the company address.")
    email_to = models.TextField("to (addresses)", blank=True,
                                help_text="Comma-separated addresses; placeholders allowed.")
    partner_to = models.CharField("to (contacts)", max_length=500, blank=True,
                                  help_text="Contact ids, comma-separated, usually "
                                            "{{ object.partner.id }}.")
    partners = models.ManyToManyField("contacts.Partner", blank=True, related_name="+",
                                      verbose_name="fixed recipients")
    email_cc = models.TextField("cc", blank=True)
    reply_to = models.CharField(max_length=320, blank=True)
    lang = models.CharField("language", max_length=200, blank=True,
                            help_text="e.g. {{ object.partner.language }}; empty: the company "
                                      "language.")
    text_lang = models.CharField(
        "written in", max_length=10, choices=LANGUAGE_CHOICES, blank=True,
        help_text="The language of the subject and body above; empty: the company's language. "
                  "Translations below hold the other languages.")
    scheduled_send = models.CharField(
        max_length=200, blank=True,
        help_text="When to send: empty for now, “2 days” / “3 hours” after rendering, or a "
                  "date expression such as {{ object.due_date }}.")
    auto_delete = models.BooleanField(default=False,
                                      help_text="Delete the email from the outbox once sent.")
    attach_document = models.BooleanField(
        default=False, help_text="Attach the record's PDF (quotation, invoice).")
    server = models.ForeignKey("outgoing.MailServer", on_delete=models.SET_NULL, null=True,
                               blank=True, related_name="+",
                               help_text="Empty: chosen by sender address and priority.")
    layout = models.CharField(max_length=10, choices=Layout.choices, default=Layout.BRANDED)
    default_for = models.CharField(
        max_length=40, blank=True,
        help_text="The action this template is the default for, e.g. “Send quotation”.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")

    objects = TemplateQuerySet.as_manager()

    class Meta:
        ordering = ["record_type", "name"]
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="template_name_unique",
                                    condition=Q(company__isnull=False)),
            models.UniqueConstraint(fields=["name"], name="shared_template_name_unique",
                                    condition=Q(company__isnull=True)),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def record_type_label(self) -> str:
        try:
            return record_types.get(self.record_type).label
        except LookupError:
            return self.record_type


class TemplateTranslation(models.Model):
    """The subject and body in one more language; the template itself holds its own
    (`EmailTemplate.text_lang`, else the company's)."""

    template = models.ForeignKey(EmailTemplate, on_delete=models.CASCADE,
                                 related_name="translations")
    lang = models.CharField("language", max_length=10, choices=LANGUAGE_CHOICES)
    subject = models.CharField(max_length=998, blank=True)
    body_html = models.TextField("body", blank=True)

    class Meta:
        ordering = ["lang"]
        constraints = [models.UniqueConstraint(fields=["template", "lang"],
                                               name="template_translation_unique")]

    def __str__(self) -> str:
        return f"{self.template} ({self.lang})"


class TemplateAttachment(models.Model):
    """A static file sent with every mail of the template (terms and conditions, a brochure);
    the bytes live in the content-addressed attachment store."""

    template = models.ForeignKey(EmailTemplate, on_delete=models.CASCADE,
                                 related_name="attachments")
    name = models.CharField(max_length=255)
    mimetype = models.CharField(max_length=255, default="application/octet-stream")
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


from mailroom.templating.mass_models import MassSend  # noqa: E402, F401 - the app's model
