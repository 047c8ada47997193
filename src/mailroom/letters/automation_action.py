"""The "Send a letter" automation action: a rule such as "invoice 30 days overdue, not paid"
posts the record's document to its customer, with the rule's template (if any) printed as a
reminder on the cover page, below the address in the envelope window.

Registered in `LettersConfig.ready()` into `automation.actions` (automation sits below
letters and never imports it). The firing runs it inside its savepoint with the system as the
actor; the letter's idempotency key is derived from the firing's, so the same event never
posts a second letter even if the run row were lost. A missing postal address is a
`ValidationError` in plain words ("The address of Jane Doe has no postcode (ZIP)."): the
firing makes it the run's error and a note on the record.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.html import escape

from mailroom.automation.actions import register_action, render_rule_template
from mailroom.automation.models import AutomationRule
from mailroom.core import record_types
from mailroom.documents.registry import spec_for_label
from mailroom.letters.models import Letter
from mailroom.letters.provider_services import default_provider
from mailroom.letters.services import LetterOptions, send_by_post

KEY = "letter"
TEMPLATE_HELP = ("optional: its subject and text are printed as a reminder on the cover page, "
                 "below the address, in front of the document.")


def letter_key(idempotency_key: str) -> uuid.UUID:
    """The letter's idempotency key for one firing (rule, record, event): stable, so a second
    firing for the same event finds the letter the first one made."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"mailroom:automation:{idempotency_key}")


def reminder(rule: AutomationRule, record: models.Model) -> str:
    """The rule's template rendered for the record as the cover's message (subject as its
    heading, then the body), or "" when the rule has no template."""
    if rule.template_id is None:
        return ""
    rendered = render_rule_template(rule, record)
    heading = f"<h3>{escape(rendered.subject)}</h3>" if rendered.subject.strip() else ""
    return heading + rendered.body


def send_letter(rule: AutomationRule, record: models.Model, idempotency_key: str) -> Letter:
    """Post the record's document to its partner through the company's default provider."""
    message = reminder(rule, record)
    options = LetterOptions(message=message, cover_page=bool(message),
                            provider=default_provider(record.company, actor=None))
    return send_by_post(record, actor=None, options=options,
                        idempotency_key=letter_key(idempotency_key))


def validate(rule: AutomationRule) -> None:
    """Only record types that print as a document and have a customer can go by post."""
    try:
        record_type = record_types.get(rule.record_type)
    except LookupError:
        return  # validate_rule names the record type itself
    model = record_type.model
    if spec_for_label(model._meta.label_lower) is None:
        raise ValidationError({"action": f"{record_type.label_plural} have no document to post; "
                                         f"choose “Send an email”."})
    if not any(f.name == "partner" for f in model._meta.concrete_fields):
        raise ValidationError({"action": f"{record_type.label_plural} have no customer "
                                         f"(partner) whose address the letter could take."})


def register() -> None:
    register_action(KEY, "Send a letter (by post)", send_letter, template="optional",
                    noun="letter", template_help=TEMPLATE_HELP, validate=validate)
