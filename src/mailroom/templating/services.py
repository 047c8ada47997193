"""Template and composer actions: the only writers of templates, and the way templated or
composed mail reaches the outbox and the chatter.

Sending = one transaction: the chatter message (with its attachments) and the outbox row are
written together, so the record's history and the hub never disagree.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from mailroom.chatter.models import Message
from mailroom.chatter.services import post_message, require_access, store_attachment
from mailroom.core import record_types
from mailroom.core.access import perm, require
from mailroom.core.durability import durable_commit
from mailroom.core.roles import Role
from mailroom.core.services import audit, snapshot
from mailroom.lib.formatting import normalize_locale
from mailroom.lib.sandbox import TemplateError, check_simple, compile_template
from mailroom.outgoing.models import OutgoingMail, Purpose
from mailroom.outgoing.services import FileToSend, enqueue
from mailroom.templating import actions
from mailroom.templating.checks import unknown_placeholders
from mailroom.templating.models import EmailTemplate, TemplateTranslation
from mailroom.templating.rendering import RenderedMail, document_file, finish_html, render_template

# (field name, label, is HTML) of every templated field
TEMPLATED_FIELDS = (
    ("subject", "subject", False), ("body_html", "body", True), ("email_from", "from", False),
    ("email_to", "to", False), ("partner_to", "to (contacts)", False), ("email_cc", "cc", False),
    ("reply_to", "reply-to", False), ("lang", "language", False),
    ("scheduled_send", "scheduled send", False),
)


def is_template_editor(user) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name__in=[Role.TEMPLATE_EDITOR, Role.ADMINISTRATOR]).exists()


_DENIED = "You are not allowed to change email templates."


def _require(actor, action: str, template: EmailTemplate) -> None:
    """The permission, then the template's company; a template shared by every company (no
    company) is changed by Template Editors only."""
    shared = template.company_id is None
    require(actor, perm(template, action), None if shared else template, denied=_DENIED,
            elsewhere="This template belongs to another company.")
    if shared and actor is not None and not is_template_editor(actor):
        raise PermissionDenied("Only Template Editors can change templates shared by "
                               "every company.")


def validate_sources(template: EmailTemplate, translations: Iterable[TemplateTranslation],
                     *, simple_only: bool) -> None:
    """Compile every field and check every placeholder path against the record type's
    context (`checks`); for non-editors, only simple placeholders. Errors name the field and
    the line, collected for the form."""
    errors: dict[str, list[str]] = {}
    try:
        record_type = record_types.get(template.record_type)
    except LookupError:
        raise ValidationError({"record_type": "Choose what the template applies to."}) from None
    sources = [(name, label, html, getattr(template, name)) for name, label, html
               in TEMPLATED_FIELDS]
    for tr in translations:
        sources += [("translations", f"subject ({tr.lang})", False, tr.subject),
                    ("translations", f"body ({tr.lang})", True, tr.body_html)]
    for name, label, html, source in sources:
        if not source:
            continue
        if simple_only:
            problems = check_simple(source)
            if problems:
                errors.setdefault(name, []).extend(
                    f"{label[:1].upper()}{label[1:]}: {p}" for p in problems)
                continue
        try:
            compile_template(source, name=template.name or "template", field=label, html=html)
        except TemplateError as exc:
            errors.setdefault(name, []).append(str(exc))
            continue
        errors.setdefault(name, []).extend(f"{label[:1].upper()}{label[1:]}: {p}"
                                           for p in unknown_placeholders(source, record_type))
    errors = {name: found for name, found in errors.items() if found}
    if errors:
        raise ValidationError(errors)


def save_template(template: EmailTemplate, *, actor,
                  translations: Sequence[TemplateTranslation] | None = None) -> EmailTemplate:
    """Create or update a template (and optionally replace its translations)."""
    creating = template.pk is None
    _require(actor, "add" if creating else "change", template)
    if template.default_for and template.default_for not in actions.ACTIONS:
        raise ValidationError({"default_for": "Unknown action."})
    if template.default_for and actions.ACTIONS[template.default_for].record_type != (
            template.record_type):
        raise ValidationError({"default_for": "That action is for another record type."})
    current = list(template.translations.all()) if template.pk else []
    validate_sources(template, translations if translations is not None else current,
                     simple_only=not is_template_editor(actor))
    before = None if creating else snapshot(EmailTemplate.objects.get(pk=template.pk))
    template.updated_at = timezone.now()
    template.updated_by = actor if actor is not None and actor.pk else None
    try:
        with transaction.atomic():
            if template.default_for:  # one default per action and company
                EmailTemplate.objects.filter(
                    company=template.company, default_for=template.default_for).exclude(
                    pk=template.pk).update(default_for="")
            template.save()
            if translations is not None:
                template.translations.all().delete()
                for tr in translations:
                    tr.template = template
                    tr.pk = None
                TemplateTranslation.objects.bulk_create(translations)
            audit("templating.template." + ("create" if creating else "change"), actor=actor,
                  obj=template, company=template.company, before=before,
                  after=snapshot(template))
    except IntegrityError:
        raise ValidationError({"name": "A template with this name already exists."}) from None
    return template


def duplicate_template(template: EmailTemplate, *, actor, company=None) -> EmailTemplate:
    """A copy named “… (copy)”, with translations, fixed recipients and files."""
    require(actor, "templating.add_emailtemplate", denied=_DENIED)
    copy = EmailTemplate.objects.get(pk=template.pk)
    copy.pk = None
    copy.default_for = ""
    if company is not None:
        copy.company = company
    base, n = f"{template.name} (copy)", 2
    copy.name = base
    while EmailTemplate.objects.filter(company=copy.company, name=copy.name).exists():
        copy.name, n = f"{base} {n}", n + 1
    translations = [TemplateTranslation(lang=t.lang, subject=t.subject, body_html=t.body_html)
                    for t in template.translations.all()]
    with transaction.atomic():
        save_template(copy, actor=actor, translations=translations)
        copy.partners.set(template.partners.all())
        for item in template.attachments.all():
            item.pk, item.template = None, copy
            item.save()
    return copy


def set_active(template: EmailTemplate, active: bool, *, actor) -> EmailTemplate:
    _require(actor, "change", template)
    with transaction.atomic():
        EmailTemplate.objects.filter(pk=template.pk).update(active=active)
        audit("templating.template." + ("unarchive" if active else "archive"), actor=actor,
              obj=template, company=template.company)
    template.active = active
    return template


def missing_languages(template: EmailTemplate, languages: Iterable[str],
                      own: str | None = None) -> list[str]:
    """Which of `languages` (the company's: the ones its contacts speak) get the template's
    own text for want of a translation: those with neither a translation nor the template's
    own language (`text_lang`, else its company's; for a shared template, `own`: the language
    of the company using it). Languages match as `rendering.choose_texts` matches them (en_GB
    reads an en_US text)."""
    own = template.text_lang or getattr(template.company, "language", None) or own or ""
    covered = {normalize_locale(code, fallback="").split("_")[0]
               for code in [own, *(t.lang for t in template.translations.all())]} - {""}
    wanted = {normalize_locale(code, fallback="") for code in languages} - {""}
    return sorted(code for code in wanted if code.split("_")[0] not in covered)


# --- sending ---------------------------------------------------------------------------------

def default_sender(record, actor) -> str:
    company = record.company
    if actor is not None and getattr(actor, "email", ""):
        name = actor.get_full_name() or company.name
        return f"{name} <{actor.email}>"
    if company.email:
        return f"{company.name} <{company.email}>"
    raise ValidationError({"email_from": "There is no sender address: give the company or "
                                         "your user an email address."})


def send_rendered(record, rendered: RenderedMail, *, actor, purpose: str = Purpose.TRANSACTIONAL,
                  priority: int = OutgoingMail.Priority.NORMAL, idempotency_key: str | None = None,
                  is_automatic: bool = False, on_sent: str = "", server=None,
                  auto_delete: bool = False) -> OutgoingMail:
    """Queue `rendered` for `record` and log it on the record's chatter, in one transaction."""
    require_access(actor, record)
    if not rendered.to:
        raise ValidationError({"to": "Choose at least one recipient."})
    company = record.company
    if idempotency_key:
        existing = OutgoingMail.objects.filter(company=company,
                                               idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    try:  # the message, its chatter entry and files, durable before the user is told "sent"
        with durable_commit(), transaction.atomic():
            stored = [store_attachment(record, actor=actor, name=f.name,
                                       stream=io.BytesIO(f.content), mimetype=f.mimetype)
                      for f in rendered.attachments]
            message = post_message(
                record, actor=actor, body_html=rendered.body, subject=rendered.subject,
                message_type=Message.Type.EMAIL, direction=Message.Direction.OUTGOING,
                attachments=stored, notify=False)
            mail = enqueue(
                company=company, idempotency_key=idempotency_key, actor=actor,
                email_from=rendered.email_from or default_sender(record, actor),
                to=rendered.to, cc=rendered.cc, subject=rendered.subject, html=rendered.html,
                text=rendered.text, attachments=rendered.attachments, record=record,
                chatter_message=message, priority=priority, purpose=purpose,
                scheduled_at=rendered.scheduled_at, server=server, reply_to=rendered.reply_to,
                is_automatic=is_automatic, auto_delete=auto_delete, on_sent=on_sent)
            if mail.chatter_message_id != message.pk:
                raise _AlreadySent(mail)  # a concurrent request with the same key won
    except _AlreadySent as won:  # our chatter entry and files are rolled back with it
        return won.mail
    return mail


class _AlreadySent(Exception):
    def __init__(self, mail: OutgoingMail) -> None:
        self.mail = mail


def _on_sent(template: EmailTemplate | None) -> str:
    action = actions.ACTIONS.get(template.default_for) if template is not None else None
    return action.on_sent if action else ""


def send_template(record, template: EmailTemplate, *, actor, ctx: dict | None = None,
                  idempotency_key: str | None = None, is_automatic: bool = False,
                  purpose: str = Purpose.TRANSACTIONAL, lang: str | None = None,
                  on_sent: str | None = None) -> OutgoingMail:
    """Render `template` for `record` and send it. TemplateError: nothing is created."""
    _check_usable(template, record)
    rendered = render_template(template, record, user=actor, ctx=ctx, lang=lang)
    return send_rendered(record, rendered, actor=actor, purpose=purpose,
                         idempotency_key=idempotency_key, is_automatic=is_automatic,
                         on_sent=_on_sent(template) if on_sent is None else on_sent,
                         server=template.server, auto_delete=template.auto_delete)


def _check_usable(template: EmailTemplate, record) -> None:
    record_type = record_types.for_model(record)
    if record_type is None or template.record_type != record_type.key:
        raise ValidationError({"template": f"“{template.name}” is not a template for "
                                           f"{record._meta.verbose_name_plural}."})
    if template.company_id not in (None, record.company_id):
        raise ValidationError({"template": "This template belongs to another company."})


@dataclass
class Composed:
    """What the composer's user finally chose (after editing the rendered template)."""

    subject: str
    body: str
    to: list  # Partner objects and addresses
    cc: list[str]
    template: EmailTemplate | None = None
    lang: str = ""
    attachments: Sequence[FileToSend] = ()
    attach_document: bool = False
    scheduled_at: object = None
    email_from: str = ""
    reply_to: str = ""


def send_composed(record, composed: Composed, *, actor,
                  idempotency_key: str | None = None) -> OutgoingMail:
    """The composer's Send: the user's subject and body in the template's layout."""
    template = composed.template
    if template is not None:
        _check_usable(template, record)
    if not composed.subject.strip():
        raise ValidationError({"subject": "Write a subject."})
    rendered = RenderedMail(template=template, lang=composed.lang or record.company.language,
                            lang_missing=False, subject=composed.subject.strip(),
                            body=composed.body, to=list(composed.to), cc=list(composed.cc),
                            email_from=composed.email_from, reply_to=composed.reply_to,
                            scheduled_at=composed.scheduled_at)
    finish_html(rendered, record.company,
                template.layout if template is not None else EmailTemplate.Layout.BRANDED)
    files = list(composed.attachments)
    if composed.attach_document:
        document = document_file(record, lang=rendered.lang)
        if document is not None:
            files.insert(0, document)
    rendered.attachments = files
    on_sent = _on_sent(template)
    if not on_sent and composed.attach_document:
        on_sent = actions.MARK_DOCUMENT_SENT
    return send_rendered(record, rendered, actor=actor, idempotency_key=idempotency_key,
                         on_sent=on_sent,
                         server=template.server if template is not None else None,
                         auto_delete=template.auto_delete if template is not None else False)


@dataclass
class MassResult:
    record: object
    mail: OutgoingMail | None = None
    error: str = ""


def send_mass(records_: Sequence, template: EmailTemplate, *, actor,
              batch: str | None = None) -> list[MassResult]:
    """One mail per record, each rendered in its own language and logged on its own record.

    Each record is its own transaction: one failing render never stops the others. With the
    same `batch` id, sending a chunk again (a retried request) queues nothing twice.
    """
    batch = batch or uuid.uuid4().hex
    purpose = Purpose.BULK if len(records_) > 1 else Purpose.TRANSACTIONAL
    results = []
    for record in records_:
        try:
            mail = send_template(record, template, actor=actor, purpose=purpose,
                                 idempotency_key=f"mass:{batch}:{record._meta.label_lower}:"
                                                 f"{record.pk}")
        except TemplateError as exc:
            results.append(MassResult(record, error=str(exc)))
        except ValidationError as exc:
            results.append(MassResult(record, error="; ".join(exc.messages)))
        else:
            results.append(MassResult(record, mail))
    return results
