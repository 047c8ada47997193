"""A new business record from a message: which fields take the subject, sender and text.

Record types differ only in field names (a Lead's `email_from`, a Ticket's `email`, an
Applicant's `partner_name`), so one table of candidates serves them all; alias defaults win.
"""

from __future__ import annotations

from django.db import models

TITLE_FIELDS = ("name", "subject", "title")
EMAIL_FIELDS = ("email_from", "email")
NAME_FIELDS = ("partner_name", "contact_name")
TEXT_FIELDS = ("description",)


def _field(model: type[models.Model], names: tuple[str, ...]) -> models.Field | None:
    for name in names:
        try:
            return model._meta.get_field(name)
        except Exception:
            continue
    return None


def _cut(text: str, limit: int) -> str:
    """`text` within `limit` characters, ending in "…" when it had to be cut (as the router
    caps header fields), so nobody takes a cut title for the whole one."""
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def build(model: type[models.Model], *, company, defaults: dict, subject: str, partner,
          sender: str, sender_name: str, text: str) -> models.Model:
    """An unsaved record of `model` filled from the message."""
    record = model(company=company)
    values: dict = {}
    title = _field(model, TITLE_FIELDS)
    if title is not None:
        values[title.name] = _cut(subject or f"Message from {sender_name or sender}",
                                  title.max_length or 200)
    email = _field(model, EMAIL_FIELDS)
    if email is not None and sender:
        values[email.name] = sender[:email.max_length or 254]
    name = _field(model, NAME_FIELDS)
    if name is not None:
        values[name.name] = _cut(sender_name or sender, name.max_length or 200)
    body = _field(model, TEXT_FIELDS)
    if body is not None and text:
        values[body.name] = text[:10000]
    partner_field = _field(model, ("partner",))
    if partner_field is not None and partner is not None:
        values[partner_field.name] = partner
    for key, value in defaults.items():
        field = model._meta.get_field(key)
        if field.name == "company":
            continue  # never from defaults (routing.defaults refuses them when saved)
        values[field.attname if field.is_relation else key] = value
    for key, value in values.items():
        setattr(record, key, value)
    record.company = company  # last, so nothing above can move the record to another company
    return record
