"""The actions a template can be the default for, and what delivery does to the record.

"Send quotation" opens the composer with the company's default template for that action
(a company's own default wins over a shared one), and its mail carries the
`mark_document_sent` delivery hook so the quotation is marked sent when the mail is sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

MARK_DOCUMENT_SENT = "mark_document_sent"


@dataclass(frozen=True)
class Action:
    key: str
    label: str
    record_type: str
    on_sent: str = ""  # delivery hook of mails sent through this action


ACTIONS: dict[str, Action] = {a.key: a for a in (
    Action("send_quotation", "Send quotation", "sales.quotation", MARK_DOCUMENT_SENT),
    Action("send_invoice", "Send invoice", "invoicing.invoice", MARK_DOCUMENT_SENT),
    Action("invoice_reminder", "Payment reminder", "invoicing.invoice"),
    Action("acknowledge_ticket", "Acknowledge ticket", "helpdesk.ticket"),
    Action("interview_invitation", "Interview invitation", "recruitment.applicant"),
    Action("lead_followup", "Lead follow-up", "crm.lead"),
    Action("task_update", "Task update", "projects.task"),
)}


def choices() -> list[tuple[str, str]]:
    return [("", "—")] + [(a.key, a.label) for a in ACTIONS.values()]


def default_action_for(record_type: str) -> Action | None:
    """The composer's action for a record type ("Send quotation" for quotations)."""
    return next((a for a in ACTIONS.values() if a.record_type == record_type), None)


def default_template(company, action_key: str):
    """The company's default template for the action, else the shared one, else None."""
    from mailroom.templating.models import EmailTemplate

    action = ACTIONS.get(action_key)
    if action is None:
        return None
    found = list(EmailTemplate.objects.filter(
        Q(company=company) | Q(company__isnull=True), default_for=action_key,
        record_type=action.record_type, active=True).order_by("company_id"))
    own = [t for t in found if t.company_id is not None]
    return (own or found or [None])[0]


def _mark_document_sent(mail) -> None:
    from mailroom.apps.invoicing.models import Invoice
    from mailroom.apps.invoicing.services import mark_invoice_sent
    from mailroom.apps.sales.models import Quotation
    from mailroom.apps.sales.services import mark_quotation_sent

    record = mail.record if mail.content_type_id and mail.object_id else None
    if isinstance(record, Quotation):
        if record.state in (Quotation.State.DRAFT, Quotation.State.SENT):
            mark_quotation_sent(record, actor=None)
    elif isinstance(record, Invoice):
        mark_invoice_sent(record, actor=None, when=mail.sent_at)


def register_builtin_hooks() -> None:
    from mailroom.outgoing.hooks import register_delivery_hook

    register_delivery_hook(MARK_DOCUMENT_SENT, _mark_document_sent)
