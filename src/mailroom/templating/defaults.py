"""The predefined templates every installation starts with (shared by all companies).

Created once, after migrate, when no template is the default for their action yet; edit or
duplicate them like any other template.
"""

from __future__ import annotations

from mailroom.templating.models import EmailTemplate, TemplateTranslation

_RIGHT = ' style="text-align:right"'
_LINES_TABLE = (
    f"<table><tr><th>Description</th><th{_RIGHT}>Quantity</th><th{_RIGHT}>Amount</th></tr>"
    "{% for line in object.lines %}<tr><td>{{ line.description }}</td>"
    f"<td{_RIGHT}>{{{{ line.quantity|number }}}}</td>"
    f"<td{_RIGHT}>{{{{ line.subtotal|money(object.currency) }}}}</td></tr>"
    "{% endfor %}</table>")

DEFAULTS = [
    dict(
        name="Quotation: send to customer", record_type="sales.quotation",
        default_for="send_quotation", attach_document=True,
        partner_to="{{ object.partner.id }}", lang="{{ object.partner.language }}",
        subject="{{ company.name }} quotation {{ object.ref }}",
        body_html=(
            "<p>Hello {{ object.partner.name }},</p>"
            "<p>Please find attached our quotation <strong>{{ object.ref }}</strong> amounting "
            "to <strong>{{ object.amount_total|money(object.currency) }}</strong>"
            "{% if object.validity_date %}, valid until {{ object.validity_date|date }}"
            "{% endif %}.</p>" + _LINES_TABLE +
            "<p>Do not hesitate to contact us if you have any questions.</p>"
            "<p>Best regards,<br>{{ user.name }}</p>"),
        translations={"de_DE": (
            "{{ company.name }} Angebot {{ object.ref }}",
            "<p>Guten Tag {{ object.partner.name }},</p>"
            "<p>anbei erhalten Sie unser Angebot <strong>{{ object.ref }}</strong> über "
            "<strong>{{ object.amount_total|money(object.currency) }}</strong>"
            "{% if object.validity_date %}, gültig bis {{ object.validity_date|date }}"
            "{% endif %}.</p><p>Bei Fragen stehen wir Ihnen gerne zur Verfügung.</p>"
            "<p>Mit freundlichen Grüßen<br>{{ user.name }}</p>")},
    ),
    dict(
        name="Invoice: send to customer", record_type="invoicing.invoice",
        default_for="send_invoice", attach_document=True,
        partner_to="{{ object.partner.id }}", lang="{{ object.partner.language }}",
        subject="{{ company.name }} invoice {{ object.ref }}",
        body_html=(
            "<p>Hello {{ object.partner.name }},</p>"
            "<p>Please find attached invoice <strong>{{ object.ref }}</strong> of "
            "<strong>{{ object.amount_total|money(object.currency) }}</strong>, due on "
            "{{ object.due_date|date }}.</p>"
            "<p>Best regards,<br>{{ user.name }}</p>"),
        translations={"de_DE": (
            "{{ company.name }} Rechnung {{ object.ref }}",
            "<p>Guten Tag {{ object.partner.name }},</p>"
            "<p>anbei erhalten Sie die Rechnung <strong>{{ object.ref }}</strong> über "
            "<strong>{{ object.amount_total|money(object.currency) }}</strong>, fällig am "
            "{{ object.due_date|date }}.</p>"
            "<p>Mit freundlichen Grüßen<br>{{ user.name }}</p>")},
    ),
    dict(
        name="Invoice: payment reminder", record_type="invoicing.invoice",
        default_for="invoice_reminder", partner_to="{{ object.partner.id }}",
        lang="{{ object.partner.language }}",
        subject="Reminder: invoice {{ object.ref }} is due on {{ object.due_date|date }}",
        body_html=(
            "<p>Hello {{ object.partner.name }},</p>"
            "<p>This is a friendly reminder that invoice <strong>{{ object.ref }}</strong> "
            "({{ object.amount_residual|money(object.currency) }} still due) is due on "
            "{{ object.due_date|date }}.</p><p>If you have already paid, please ignore this "
            "message.</p><p>Best regards,<br>{{ company.name }}</p>"),
    ),
    dict(
        name="Ticket: acknowledge receipt", record_type="helpdesk.ticket",
        default_for="acknowledge_ticket", partner_to="{{ object.partner.id }}",
        email_to="{% if not object.partner.id %}{{ object.email }}{% endif %}",
        lang="{{ object.partner.language }}",
        subject="We received your request: {{ object.name }} [{{ object.ref }}]",
        body_html=(
            "<p>Hello {{ object.partner.name or '' }},</p>"
            "<p>Thank you for contacting us. Your request <strong>{{ object.ref }}</strong> "
            "has been received and our team will get back to you shortly.</p>"
            "<p>You can reply to this email to add information.</p>"
            "<p>The {{ company.name }} support team</p>"),
    ),
    dict(
        name="Applicant: interview invitation", record_type="recruitment.applicant",
        default_for="interview_invitation", email_to="{{ object.email }}",
        subject="Interview for {{ object.job.name }} at {{ company.name }}",
        body_html=(
            "<p>Hello {{ object.partner_name }},</p>"
            "<p>Thank you for applying for the position of <strong>{{ object.job.name }}"
            "</strong>. We would like to invite you to an interview; we will contact you "
            "shortly to agree on a date.</p><p>Kind regards,<br>{{ user.name }}</p>"),
    ),
]


def install_default_templates(sender=None, **kwargs) -> int:
    """Create the shared predefined templates that are missing (post_migrate; idempotent)."""
    created = 0
    for spec in DEFAULTS:
        spec = {"text_lang": "en_US", **spec}  # all written in English
        translations = spec.pop("translations", {})
        if EmailTemplate.objects.filter(company__isnull=True, name=spec["name"]).exists() or (
                EmailTemplate.objects.filter(company__isnull=True,
                                             default_for=spec["default_for"]).exists()):
            continue
        template = EmailTemplate.objects.create(company=None, **spec)
        TemplateTranslation.objects.bulk_create(
            TemplateTranslation(template=template, lang=lang, subject=subject, body_html=body)
            for lang, (subject, body) in translations.items())
        created += 1
    return created
