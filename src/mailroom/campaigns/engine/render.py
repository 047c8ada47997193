"""A campaign mail for one recipient, with the expensive work done once per language and
variant.

Once per (language, variant), `_Prepared`: the body's `{{ path }}` placeholders (and the
subject's) are swapped for inert markers, the visible unsubscribe footer is added, the whole
is sanitized, wrapped in the layout, given the hidden preheader, CSS-inlined and turned into
its text part — then the markers become placeholders again, links are instrumented for
tracking (tracking.instrument) and the HTML is compiled once as a sandboxed Jinja template.
Per recipient only that compiled template runs, on a small plain-data context (`context()`).
Braces that come from the layout or the company's data are written as `&#123;`, so nothing
but the placeholders is ever read as a template. The text part is split at its markers once
and joined with the recipient's values.

A body with `{% … %}` logic (lib.sandbox.check_simple fails) takes the slow path: the body is
rendered for the recipient first, then goes through the same steps, so both give the same
mail. A placeholder the context does not have raises TemplateError (the campaign fails with
that reason).
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass
from functools import cached_property

from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import to_language

from mailroom.campaigns import links, mail_unsubscribe, tracking
from mailroom.campaigns.engine.audience import campaign_language
from mailroom.campaigns.models import Campaign
from mailroom.lib.addresses import domain_of
from mailroom.lib.formatting import normalize_locale
from mailroom.lib.sandbox import TemplateError, check_simple, compile_template
from mailroom.outgoing import checks
from mailroom.templating import layout
from mailroom.templating.markers import Markers

_BODY_TAG = re.compile(r"<body\b[^>]*>", re.I)
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
FOOTER_PATHS = ("unsubscribe_url", "preferences_url")
PREHEADER_STYLE = ("display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;"
                   "opacity:0;overflow:hidden;mso-hide:all")


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str
    headers: dict[str, str]


@dataclass(frozen=True)
class _Texts:
    lang: str
    subject: str
    preview: str
    body: str


def _path(expression: str) -> str | None:
    inner = expression[2:-2].strip()
    return inner if re.fullmatch(r"[A-Za-z_][\w.]*", inner) else None


class _Prepared:
    """One language and variant, finished once."""

    def __init__(self, renderer: CampaignRenderer, texts: _Texts, body: str | None = None,
                 subject: str = "") -> None:
        campaign, markers = renderer.campaign, Markers()
        self.name, self.lang, self.tz = campaign.name, texts.lang, renderer.tz
        self.subject_parts = markers.text_parts(markers.hide(texts.subject))
        subject_title = markers.hide(texts.subject) if body is None else subject
        body = markers.hide(texts.body) if body is None else body
        footer_marks = {path: markers.mark("{{ " + path + " }}") for path in FOOTER_PATHS}
        with translation.override(to_language(texts.lang)):
            footer = _footer(renderer.company, footer_marks)
            wrapped = layout.wrap(body + footer, company=renderer.company,
                                  subject=subject_title, lang=texts.lang,
                                  layout=campaign.layout)
        wrapped = _with_preheader(wrapped, texts.preview)
        finished, text = layout.finish(wrapped)
        source = tracking.instrument(campaign, markers.jinja(finished),
                                     opens=campaign.track_opens, clicks=campaign.track_clicks)
        self.html = compile_template(source, name=campaign.name, field="body", html=True)
        self.text_parts = markers.text_parts(text)
        self.paths = [_path(s) for s in markers.sources]
        self.templates = [None if p else compile_template(s, name=campaign.name,
                                                          field="body", html=False)
                          for p, s in zip(self.paths, markers.sources, strict=True)]

    def subject(self, context: dict) -> str:
        return self._join(self.subject_parts, context, "subject")

    def text(self, context: dict) -> str:
        return self._join(self.text_parts, context, "body")

    def _join(self, parts: list[str | int], context: dict, field: str) -> str:
        """Literal text and the recipient's values: a plain `{{ path }}` is looked up here
        (as the sandbox would: a missing name is an error, None is empty), anything else
        (a formatting filter) renders through its own compiled template."""
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            path = self.paths[part]
            if path is None:
                out.append(self.templates[part].render(context, locale=self.lang,
                                                       timezone=self.tz))
                continue
            value = context
            for name in path.split("."):
                if value is None:
                    break
                if not isinstance(value, dict) or name not in value:
                    raise TemplateError(f"'{path}' is undefined", template=self.name,
                                        field=field)
                value = value[name]
            out.append("" if value is None else str(value))
        return "".join(out)


def _footer(company, marks: dict[str, str]) -> str:
    """The visible unsubscribe line every campaign mail carries, in the mail's language."""
    name = html_lib.escape(company.name)
    why = _("You receive this email because you subscribed to news from %(company)s.") % {
        "company": name}
    unsubscribe = _("Unsubscribe")
    preferences = _("Manage your subscriptions")
    return (f'<p style="font-size:12px;color:#6b7280;text-align:center;margin-top:32px">'
            f'{why}<br><a href="{marks["unsubscribe_url"]}" style="color:#6b7280">'
            f'{unsubscribe}</a> · <a href="{marks["preferences_url"]}" '
            f'style="color:#6b7280">{preferences}</a></p>')


def _with_preheader(wrapped: str, preview: str) -> str:
    if not preview.strip():
        return wrapped
    block = f'<div style="{PREHEADER_STYLE}">{html_lib.escape(preview)}</div>'
    match = _BODY_TAG.search(wrapped)
    if match is None:
        return block + wrapped
    return wrapped[:match.end()] + block + wrapped[match.end():]


def _list_id_phrase(name: str) -> str:
    cleaned = " ".join(re.sub(r'["\\<>()]', "", name).split())[:60]
    return f'"{cleaned}"' if cleaned else ""


class CampaignRenderer:
    """`render(recipient)` for one recipient (a test send) or many (the queue). A recipient
    is anything with `id`, `email`, `name`, `lang` and `variant` (a CampaignRecipient, or the
    queue's plain rows); an unsaved one (id None) gets links that lead nowhere."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        self.company = campaign.company
        self.lang = campaign_language(campaign)
        self.tz = getattr(self.company, "timezone", "") or "UTC"
        self.translations = {normalize_locale(t.lang): t for t in campaign.translations.all()}
        self._prepared: dict[tuple[str, str], _Prepared] = {}
        self._simple: dict[str, bool] = {}
        self._headers_checked = False
        domain = domain_of(_address_of(campaign.email_from)) or "mailroom.invalid"
        self.list_id = (f"{_list_id_phrase(campaign.name)} "
                        f"<campaign-{campaign.pk}.{domain}>").strip()
        self.feedback_id = f"{campaign.pk}:{campaign.company_id}:campaign:mailroom"
        # RFC 2369's mailto next to the one-click URL, when the gateway receives the domain
        mailto_domain = mail_unsubscribe.mailto_domain(campaign.company_id, domain)
        self.mailto = (_builder(lambda token: mail_unsubscribe.mailto_url(token, mailto_domain))
                       if mailto_domain else None)

    def texts(self, lang: str, variant: str = "a") -> _Texts:
        campaign = self.campaign
        found = self.translations.get(normalize_locale(lang, fallback=self.lang))
        if found is None or normalize_locale(lang, fallback=self.lang) == self.lang:
            if variant == "b":  # an A/B test's variant B, in the campaign's own language
                return _Texts(self.lang, campaign.subject_b or campaign.subject,
                              campaign.preview_text, campaign.body_html_b or campaign.body_html)
            return _Texts(self.lang, campaign.subject, campaign.preview_text,
                          campaign.body_html)
        return _Texts(normalize_locale(found.lang), found.subject or campaign.subject,
                      found.preview_text or campaign.preview_text,
                      found.body_html or campaign.body_html)

    def is_simple(self, texts: _Texts) -> bool:
        key = texts.subject + "\0" + texts.body
        if key not in self._simple:
            self._simple[key] = not check_simple(texts.body) and not check_simple(texts.subject)
        return self._simple[key]

    def _prepared_for(self, texts: _Texts, variant: str) -> _Prepared:
        key = (texts.lang, variant)
        if key not in self._prepared:
            self._prepared[key] = _Prepared(self, texts, None)
        return self._prepared[key]

    def context(self, recipient) -> dict:
        company_id, recipient_id = self.company.pk, recipient.id or 0
        unsubscribe = links.unsubscribe_token(company_id, recipient_id)
        track = links.track_token(company_id, recipient_id)
        name = recipient.name or ""
        urls = self.urls
        return {
            "contact": {"name": name, "email": recipient.email,
                        "first_name": name.split()[0] if name.split() else ""},
            "company": {"name": self.company.name},
            "unsubscribe_url": urls["one_click"](unsubscribe),
            "unsubscribe_mailto": self.mailto(unsubscribe) if self.mailto else "",
            "preferences_url": urls["preferences"](unsubscribe),
            "open_url": urls["open"](track),
            "click_base": urls["click"](track),
        }

    @cached_property
    def urls(self) -> dict:
        """links.py's builders, each asked once: the URL resolver costs more per call than
        the rest of a recipient's context."""
        return {name: _builder(getattr(links, attr)) for name, attr in (
            ("one_click", "one_click_url"), ("preferences", "preferences_url"),
            ("open", "open_url"), ("click", "click_base"))}

    def render(self, recipient, *, slow: bool = False) -> Rendered:
        """The recipient's mail. `slow` forces the per-recipient path (the tests compare)."""
        texts = self.texts(recipient.lang or self.lang, recipient.variant or "a")
        context = self.context(recipient)
        if self.is_simple(texts) and not slow:
            prepared = self._prepared_for(texts, recipient.variant or "a")
            subject = _one_line(prepared.subject(context))
        else:
            subject = _one_line(compile_template(
                texts.subject, name=self.campaign.name, field="subject", html=False,
            ).render(context, locale=texts.lang, timezone=self.tz))
            body = compile_template(texts.body, name=self.campaign.name, field="body",
                                    html=True).render(context, locale=texts.lang,
                                                      timezone=self.tz)
            prepared = _Prepared(self, texts, body, subject)
        html = prepared.html.render(context, locale=texts.lang, timezone=self.tz)
        return Rendered(subject, html, prepared.text(context), self.headers(context))

    def headers(self, context: dict) -> dict[str, str]:
        unsubscribe = f"<{context['unsubscribe_url']}>"
        if context.get("unsubscribe_mailto"):  # https first: RFC 8058's one-click
            unsubscribe += f", <{context['unsubscribe_mailto']}>"
        headers = {
            "List-Unsubscribe": unsubscribe,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": self.list_id,
            "Precedence": "bulk",
            "Feedback-ID": self.feedback_id,
        }
        if not self._headers_checked:  # the same shape for every recipient: checked once
            checks.headers(headers)
            self._headers_checked = True
        return headers


_TOKEN_MARK = "mrtokenmark7q"


def _builder(build):
    """`build(token)` as a prefix and suffix around the token (tokens are base32: they are
    never escaped in a URL or a mailto's local part)."""
    sample = build(_TOKEN_MARK)
    if sample.count(_TOKEN_MARK) != 1:
        return build
    prefix, suffix = sample.split(_TOKEN_MARK)
    return lambda token: f"{prefix}{token}{suffix}"


def _one_line(value: str) -> str:
    """A header value: whitespace (line breaks too) collapsed, NUL dropped (checks.one_line
    refuses both; a contact's name must not make a mail unsendable)."""
    return _SPACES.sub(" ", value.replace("\0", "")).strip()


def _address_of(value: str) -> str:
    if "<" in value:
        return value.rsplit("<", 1)[1].rstrip(">").strip()
    return value.strip()
