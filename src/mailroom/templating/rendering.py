"""Render a template for one record: language, subject, body, recipients, attachments.

Nothing here writes: services.py turns a RenderedMail into an outbox row and a chatter
message. A render error names the template, the field and the line (TemplateError), and no
email is created.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as dtime

from django.utils import timezone, translation
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import to_language

from mailroom.contacts.models import Partner
from mailroom.core.blobs import read_blob
from mailroom.documents.registry import has_document
from mailroom.lib.formatting import normalize_locale
from mailroom.lib.sandbox import TemplateError, compile_template
from mailroom.outgoing.services import FileToSend
from mailroom.templating import layout
from mailroom.templating.context import build_context
from mailroom.templating.models import EmailTemplate

_RELATIVE = re.compile(r"^\s*(\d{1,4})\s*(minute|hour|day|week)s?\s*$", re.I)
_SPLIT = re.compile(r"[,;\n]+")
_SPACES = re.compile(r"[ \t\r\n\f\v]+")


@dataclass
class RenderedMail:
    template: EmailTemplate | None
    lang: str  # the language the body is written in (and its dates and amounts formatted)
    lang_missing: bool  # the wanted language has no translation: the default text was used
    subject: str
    body: str  # the rendered body, before the layout (what the composer lets users edit)
    html: str = ""  # the final HTML: layout, inlined CSS, absolute links
    text: str = ""
    email_from: str = ""
    to: list = field(default_factory=list)  # addresses and Partner objects
    cc: list[str] = field(default_factory=list)
    reply_to: str = ""
    scheduled_at: datetime | None = None
    attachments: list[FileToSend] = field(default_factory=list)
    wanted_lang: str = ""  # the customer's language, when it differs from `lang`

    @property
    def recipients_label(self) -> list[str]:
        return [f"{p.name} <{p.email}>" if isinstance(p, Partner) else p for p in self.to]


def _render(template: EmailTemplate, field_name: str, source: str, context: dict, *,
            html: bool, locale: str, tz: str) -> str:
    if not source:
        return ""
    compiled = compile_template(source, name=template.name, field=field_name, html=html)
    return compiled.render(context, locale=locale, timezone=tz)


def _line(template, field_name, source, context, locale, tz) -> str:
    """A one-line value (subject, addresses): rendered as text, whitespace collapsed. Only
    ASCII whitespace: the no-break spaces Babel puts in amounts and dates stay."""
    return _SPACES.sub(" ", _render(template, field_name, source, context, html=False,
                                    locale=locale, tz=tz)).strip(" ")


def choose_language(template: EmailTemplate, context: dict, company) -> str:
    fallback = normalize_locale(getattr(company, "language", "") or "en_US")
    if not template.lang:
        return fallback
    wanted = _line(template, "language", template.lang, context, fallback, "UTC")
    return normalize_locale(wanted, fallback=fallback) if wanted else fallback


def _same_language(a: str, b: str) -> bool:
    return a.split("_")[0] == b.split("_")[0]


@dataclass(frozen=True)
class Texts:
    """The subject and body chosen for a language, each with the language it is written in:
    dates, numbers and amounts in a text are formatted in that text's language, so a German
    customer without a German translation gets the English text with English formats."""

    subject: str
    subject_lang: str
    body: str
    body_lang: str
    missing: bool  # no translation for the wanted language: the template's own text is used


def choose_texts(template: EmailTemplate, lang: str, company_lang: str) -> Texts:
    """The translation for `lang` (or for its language in another region), else the template's
    own text, written in `text_lang` (empty: `company_lang`). A regional variant of the text's
    language (en_GB for an en_US text) keeps its own conventions: it is the same language."""
    company_lang = normalize_locale(template.text_lang, fallback=company_lang)
    own = Texts(template.subject, company_lang, template.body_html, company_lang, False)
    if lang == company_lang:
        return own
    translations = {normalize_locale(t.lang): t for t in template.translations.all()}
    found = translations.get(lang)
    if found is None and _same_language(lang, company_lang):
        return Texts(template.subject, lang, template.body_html, lang, False)
    found = found or next((t for code, t in translations.items()
                           if _same_language(code, lang)), None)
    if found is None:
        return Texts(own.subject, own.subject_lang, own.body, own.body_lang, True)
    subject, body = found.subject or template.subject, found.body_html or template.body_html
    return Texts(subject, lang if found.subject else company_lang,
                 body, lang if found.body_html else company_lang, False)


def parse_schedule(value: str, now: datetime | None = None) -> datetime | None:
    """"2 days", "3 hours", an ISO date (sent at 08:00) or datetime; empty: now."""
    value = (value or "").strip()
    if not value:
        return None
    now = now or timezone.now()
    match = _RELATIVE.match(value)
    if match:
        unit = match[2].lower() + "s"
        return now + timedelta(**{unit: int(match[1])})
    day = parse_date(value) if len(value) == 10 else None
    moment = datetime.combine(day, dtime(8, 0)) if day else parse_datetime(value)
    if moment is None:
        raise ValueError(f"“{value}” is not a date, a time, or a delay like “2 days”.")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def _partners(template, context, company, locale, tz) -> list[Partner]:
    ids: list[int] = []
    if template.partner_to:
        rendered = _line(template, "to (contacts)", template.partner_to, context, locale, tz)
        for part in _SPLIT.split(rendered):
            if part.strip():
                try:
                    ids.append(int(part.strip()))
                except ValueError:
                    raise TemplateError(
                        template=template.name, field="to (contacts)", line=None,
                        message=f"“{part.strip()}” is not a contact id.") from None
    found = {p.pk: p for p in Partner.objects.filter(company=company, pk__in=ids)}
    chosen = [found[i] for i in ids if i in found]
    if template.pk:
        chosen += [p for p in template.partners.filter(company=company) if p not in chosen]
    return chosen


def _addresses(template, field_name, source, context, locale, tz) -> list[str]:
    rendered = _line(template, field_name, source, context, locale, tz)
    return [a.strip() for a in _SPLIT.split(rendered) if a.strip()]


def render_template(template: EmailTemplate, record, *, user=None, ctx: dict | None = None,
                    lang: str | None = None, with_attachments: bool = True,
                    now: datetime | None = None) -> RenderedMail:
    """Everything the template says for `record`. Raises TemplateError."""
    company = getattr(record, "company", None)
    company_lang = normalize_locale(getattr(company, "language", "") or "en_US")
    context = _context(record, user, ctx, company_lang)
    lang = normalize_locale(lang, fallback=company_lang) if lang else choose_language(
        template, context, company)
    tz = getattr(company, "timezone", "") or "UTC"
    texts = choose_texts(template, lang, company_lang)
    if to_language(texts.body_lang) != to_language(company_lang):
        context = _context(record, user, ctx, texts.body_lang)
    subject = _line(template, "subject", texts.subject, context, texts.subject_lang, tz)
    body = _render(template, "body", texts.body, context, html=True, locale=texts.body_lang,
                   tz=tz)
    rendered = RenderedMail(template=template, lang=texts.body_lang, lang_missing=texts.missing,
                            subject=subject, body=body,
                            wanted_lang=lang if lang != texts.body_lang else "")
    lang = texts.body_lang  # the other fields in the text's language too
    rendered.email_from = _line(template, "from", template.email_from, context, lang, tz)
    rendered.to = [*_partners(template, context, company, lang, tz),
                   *_addresses(template, "to", template.email_to, context, lang, tz)]
    rendered.cc = _addresses(template, "cc", template.email_cc, context, lang, tz)
    rendered.reply_to = _line(template, "reply-to", template.reply_to, context, lang, tz)
    schedule = _line(template, "scheduled send", template.scheduled_send, context, lang, tz)
    try:
        rendered.scheduled_at = parse_schedule(schedule, now)
    except ValueError as exc:
        raise TemplateError(template=template.name, field="scheduled send", line=None,
                            message=str(exc)) from None
    finish_html(rendered, company, template.layout)
    if with_attachments:
        rendered.attachments = template_files(template, record)
    return rendered


def _context(record, user, ctx, lang: str, companies: dict | None = None) -> dict:
    """The context, its display texts (choice labels, country names) in `lang`."""
    with translation.override(to_language(lang)):
        return build_context(record, user=user, ctx=ctx, companies=companies)


def finish_html(rendered: RenderedMail, company, layout_name: str) -> None:
    """The body inside its layout (the company's address in the mail's language), inlined,
    with its text alternative."""
    with translation.override(to_language(rendered.lang)):
        wrapped = layout.wrap(rendered.body, company=company, subject=rendered.subject,
                              lang=rendered.lang, layout=layout_name)
    rendered.html, rendered.text = layout.finish(wrapped)


def template_files(template: EmailTemplate, record) -> list[FileToSend]:
    files = []
    if template.pk:
        for item in template.attachments.all():
            files.append(FileToSend(item.name, read_blob(item.sha256),
                                    item.mimetype))
    if template.attach_document:
        document = document_file(record)
        if document is not None:
            files.append(document)
    return files


def document_file(record, lang: str | None = None) -> FileToSend | None:
    """The record's PDF (quotation, invoice) when its type has one."""
    # local: WeasyPrint loads on the first PDF, not at start-up
    from mailroom.documents.pdf import render_pdf

    if not has_document(record):
        return None
    document = render_pdf(record, lang=lang)
    return FileToSend(document.filename, document.content, document.mimetype)
