"""The actions a template can be the default for, and what delivery does to the record.

"Send quotation" opens the composer with the company's default template for that action
(a company's own default wins over a shared one), and its mail carries the
`mark_document_sent` delivery hook so the quotation is marked sent when the mail is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Q

from mailroom.outgoing.hooks import register_delivery_hook
from mailroom.templating.models import EmailTemplate

MARK_DOCUMENT_SENT = "mark_document_sent"


@dataclass(frozen=True)
class Action:
    key: str
    label: str
    record_type: str
    on_sent: str = ""  # delivery hook of mails sent through this action


# filled by the business apps in their AppConfig.ready() (templating names none of them)
ACTIONS: dict[str, Action] = {}
# model label -> what "mark sent" means for it: (record, mail) -> None
_MARK_SENT: dict[str, Callable] = {}


def register_action(key: str, label: str, record_type: str, on_sent: str = "") -> Action:
    """An action a template can be the default for ("send_quotation" on quotations)."""
    action = Action(key, label, record_type, on_sent)
    if ACTIONS.get(key, action) != action:
        raise ValueError(f"Template action {key!r} is registered twice.")
    ACTIONS[key] = action
    return action


def register_mark_sent(model_label: str, mark: Callable) -> None:
    """What the `mark_document_sent` delivery hook does to a record of `model_label` once
    its mail is delivered: `mark(record, mail)`."""
    _MARK_SENT[model_label.lower()] = mark


def choices() -> list[tuple[str, str]]:
    return [("", "—")] + sorted(((a.key, a.label) for a in ACTIONS.values()),
                                key=lambda choice: choice[1])


def default_action_for(record_type: str) -> Action | None:
    """The composer's action for a record type ("Send quotation" for quotations)."""
    return next((a for a in ACTIONS.values() if a.record_type == record_type), None)


def default_template(company, action_key: str):
    """The company's default template for the action, else the shared one, else None."""
    action = ACTIONS.get(action_key)
    if action is None:
        return None
    found = list(EmailTemplate.objects.filter(
        Q(company=company) | Q(company__isnull=True), default_for=action_key,
        record_type=action.record_type, active=True).order_by("company_id"))
    own = [t for t in found if t.company_id is not None]
    return (own or found or [None])[0]


def _mark_document_sent(mail) -> None:
    record = mail.record if mail.content_type_id and mail.object_id else None
    mark = _MARK_SENT.get(record._meta.label_lower) if record is not None else None
    if mark is not None:
        mark(record, mail)


def register_builtin_hooks() -> None:
    register_delivery_hook(MARK_DOCUMENT_SENT, _mark_document_sent)
