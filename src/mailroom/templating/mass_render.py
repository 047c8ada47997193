"""A template rendered for many records, the layout finished once per language.

`render_template` (rendering.py) wraps each record's body in the layout, inlines the CSS and
writes the text part: most of a mail's cost, and the same work for every record of a mass
send. `MassRenderer` does it once per (language, text) — the body's and the subject's
`{{ … }}` swapped for inert markers (markers.py), finished, then compiled as one sandboxed
template — so per record only the placeholders run. The campaign engine finishes its mails
the same way. Bodies or subjects with `{% … %}` logic take the per-record path (the body
rendered, then finished), which is what `render_template` does; a test proves both paths
give the same mail.

`review(record, rendered)` says why a record gets no mail: a cancelled document, no
address, every recipient blacklisted. The list page's preview and the worker use it alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import translation
from django.utils.translation import to_language

from mailroom.contacts.models import Partner
from mailroom.lib.formatting import normalize_locale
from mailroom.lib.sandbox import TemplateError, check_simple, compile_template
from mailroom.templating import layout
from mailroom.templating.markers import Markers
from mailroom.templating.models import EmailTemplate
from mailroom.templating.rendering import (
    _SPLIT,
    RenderedMail,
    Texts,
    _addresses,
    _context,
    _line,
    _render,
    choose_language,
    choose_texts,
    finish_html,
    parse_schedule,
)

CANCELLED_STATES = {"cancel", "cancelled", "canceled"}


class _Prepared:
    """One template text in one language, finished once."""

    def __init__(self, template: EmailTemplate, texts: Texts, company) -> None:
        markers = Markers()
        body, title = markers.hide(texts.body), markers.hide(texts.subject)
        with translation.override(to_language(texts.body_lang)):
            wrapped = layout.wrap(body, company=company, subject=title, lang=texts.body_lang,
                                  layout=template.layout)
        finished, text = layout.finish(wrapped)
        self.html = compile_template(markers.jinja(finished), name=template.name,
                                     field="body", html=True)
        self.body = compile_template(texts.body, name=template.name, field="body", html=True)
        self.text_parts = markers.text_parts(text)
        self.pieces = [compile_template(source, name=template.name, field="body", html=False)
                       for source in markers.sources]

    def text(self, context: dict, locale: str, tz: str) -> str:
        values: dict[int, str] = {}
        out = []
        for part in self.text_parts:
            if isinstance(part, str):
                out.append(part)
                continue
            if part not in values:
                values[part] = self.pieces[part].render(context, locale=locale, timezone=tz)
            out.append(values[part])
        return "".join(out)


class MassRenderer:
    """`render(record)` for the records of one template; what is the same for all of them is
    worked out once."""

    def __init__(self, template: EmailTemplate, *, user=None) -> None:
        self.template = template
        self.user = user
        self._prepared: dict[tuple, _Prepared | None] = {}
        self._partners: dict[tuple[int, int], Partner] = {}  # (company, id): primed
        self._fixed: dict[int, list[Partner]] = {}  # the template's own contacts, by company
        self._companies: dict[str, dict] = {}  # language: {company id: company data}

    def prime(self, records) -> None:
        """Load, in one query, the contacts `partner_to` will name for these records when it
        is the usual `{{ object.partner.id }}` (else each record looks its own up)."""
        self._partners = {}  # one batch's contacts at a time: memory stays flat
        ids = {(r.company_id, r.partner_id) for r in records
               if getattr(r, "partner_id", None)}
        if not ids:
            return
        wanted = {pk for _, pk in ids}
        for partner in Partner.objects.filter(pk__in=wanted):
            self._partners[(partner.company_id, partner.pk)] = partner

    def _contacts(self, context, company, lang, tz) -> list[Partner]:
        template = self.template
        ids = _partner_ids(template, context, lang, tz)
        missing = [i for i in ids if (company.pk, i) not in self._partners]
        if missing:
            for partner in Partner.objects.filter(company=company, pk__in=missing):
                self._partners[(company.pk, partner.pk)] = partner
        chosen = [self._partners[(company.pk, i)] for i in ids
                  if (company.pk, i) in self._partners]
        if template.pk:
            if company.pk not in self._fixed:
                self._fixed[company.pk] = list(template.partners.filter(company=company))
            chosen += [p for p in self._fixed[company.pk] if p not in chosen]
        return chosen

    def _prepared_for(self, texts: Texts, company) -> _Prepared | None:
        """None: the texts have logic, each record takes the per-record path."""
        key = (company.pk, texts.body_lang, texts.subject, texts.body)
        if key not in self._prepared:
            simple = not check_simple(texts.body) and not check_simple(texts.subject)
            self._prepared[key] = _Prepared(self.template, texts, company) if simple else None
        return self._prepared[key]

    def render(self, record, *, slow: bool = False) -> RenderedMail:
        """What `render_template(template, record, with_attachments=False)` gives. Raises
        TemplateError. `slow` forces the per-record path (the tests compare)."""
        template, company = self.template, record.company
        company_lang = normalize_locale(getattr(company, "language", "") or "en_US")
        context = _context(record, self.user, None, company_lang,
                           self._companies.setdefault(company_lang, {}))
        lang = choose_language(template, context, company)
        tz = getattr(company, "timezone", "") or "UTC"
        texts = choose_texts(template, lang, company_lang)
        if to_language(texts.body_lang) != to_language(company_lang):
            context = _context(record, self.user, None, texts.body_lang,
                               self._companies.setdefault(texts.body_lang, {}))
        subject = _line(template, "subject", texts.subject, context, texts.subject_lang, tz)
        prepared = None if slow else self._prepared_for(texts, company)
        if prepared is not None:
            body = prepared.body.render(context, locale=texts.body_lang, timezone=tz)
        else:
            body = _render(template, "body", texts.body, context, html=True,
                           locale=texts.body_lang, tz=tz)
        rendered = RenderedMail(template=template, lang=texts.body_lang,
                                lang_missing=texts.missing, subject=subject, body=body,
                                wanted_lang=lang if lang != texts.body_lang else "")
        lang = texts.body_lang
        rendered.email_from = _line(template, "from", template.email_from, context, lang, tz)
        rendered.to = [*self._contacts(context, company, lang, tz),
                       *_addresses(template, "to", template.email_to, context, lang, tz)]
        rendered.cc = _addresses(template, "cc", template.email_cc, context, lang, tz)
        rendered.reply_to = _line(template, "reply-to", template.reply_to, context, lang, tz)
        schedule = _line(template, "scheduled send", template.scheduled_send, context, lang,
                         tz)
        try:
            rendered.scheduled_at = parse_schedule(schedule)
        except ValueError as exc:
            raise TemplateError(template=template.name, field="scheduled send", line=None,
                                message=str(exc)) from None
        if prepared is None:
            finish_html(rendered, company, template.layout)
        else:
            rendered.html = prepared.html.render(context, locale=lang, timezone=tz)
            rendered.text = prepared.text(context, lang, tz)
        return rendered


def _partner_ids(template: EmailTemplate, context: dict, lang: str, tz: str) -> list[int]:
    """The contact ids `partner_to` gives (rendering._partners' parsing, without its query)."""
    if not template.partner_to:
        return []
    ids = []
    rendered = _line(template, "to (contacts)", template.partner_to, context, lang, tz)
    for part in _SPLIT.split(rendered):
        if part.strip():
            try:
                ids.append(int(part.strip()))
            except ValueError:
                raise TemplateError(template=template.name, field="to (contacts)", line=None,
                                    message=f"“{part.strip()}” is not a contact id.") from None
    return ids


@dataclass
class Review:
    skip: str = ""  # why the record gets no mail ("" = it gets one)
    to: str = ""


def addresses_of(rendered: RenderedMail) -> list[str]:
    return [p.email if isinstance(p, Partner) else p for p in rendered.to]


def blacklisted_among(company_id: int, addresses) -> set[str]:
    """The lower-cased addresses, of those given, whose contact is blacklisted."""
    wanted = sorted({a for a in addresses if a})
    found: set[str] = set()
    for first in range(0, len(wanted), 500):
        found |= {a.lower() for a in Partner.objects.filter(
            company_id=company_id, is_blacklisted=True,
            email__in=wanted[first:first + 500]).values_list("email", flat=True)}
    return found


def review(record, rendered: RenderedMail | None,
           blacklisted: set[str] | None = None) -> Review:
    """Whether `record` gets its rendered mail, to whom, or why it is skipped. `blacklisted`:
    the blacklisted addresses of a whole batch, looked up once (else looked up here)."""
    if str(getattr(record, "state", "")).lower() in CANCELLED_STATES:
        return Review("Cancelled document")
    if rendered is None:
        return Review()
    if not rendered.to:
        return Review("No address: the template gives no recipient")
    nameless = [p.name for p in rendered.to if isinstance(p, Partner) and not p.email]
    if nameless:
        return Review(f"No address: {', '.join(nameless)} has no email address")
    addresses = addresses_of(rendered)
    if blacklisted is None:
        blacklisted = blacklisted_among(record.company_id, addresses)
    blacklisted = blacklisted | {p.email.lower() for p in rendered.to
                                 if isinstance(p, Partner) and p.is_blacklisted}
    to = ", ".join(rendered.recipients_label)
    if all(a.lower() in blacklisted for a in addresses):
        return Review(f"Blacklisted: {', '.join(addresses)}", to=to)
    return Review(to=to)
