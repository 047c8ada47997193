"""The mobile-friendly frame around a mail body, and the finishing every HTML mail gets.

Layouts are table-based with one media query (Outlook ignores most CSS but renders tables);
at render the CSS is inlined with css-inline (Gmail drops <style> in some views), relative
links become absolute, and the text/plain alternative is derived from the final HTML.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urljoin

import css_inline
from django.conf import settings
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from mailroom.lib.html import sanitize_html
from mailroom.lib.html_text import html_to_plain

_RELATIVE_LINK = re.compile(r"""(\s(?:href|src)=)(["'])(/[^/"'][^"']*|/)\2""", re.I)


@lru_cache(maxsize=1)
def _inliner() -> css_inline.CSSInliner:
    # at-rules (the media query) stay in a <style> block; nothing is ever fetched
    return css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


def absolute_links(html: str, base_url: str | None = None) -> str:
    base = (base_url or settings.BASE_URL).rstrip("/") + "/"
    return _RELATIVE_LINK.sub(lambda m: f"{m[1]}{m[2]}{urljoin(base, m[3])}{m[2]}", html)


def wrap(body_html: str, *, company, subject: str, lang: str, layout: str,
         extra: dict | None = None) -> str:
    """The sanitized body inside the chosen layout ("none": the body alone). `extra` adds
    to the layout's context (the notification layout's record name, button and footer)."""
    body = sanitize_html(body_html)
    if layout == "none" or company is None:
        return body
    website = (company.website or "").removeprefix("https://").removeprefix("http://")
    logo_url = ""
    if getattr(company, "logo", None):
        logo_url = settings.BASE_URL.rstrip("/") + company.logo.url
    return render_to_string(f"templating/layouts/{layout}.html", {
        "body": mark_safe(body), "company": company, "subject": subject,
        "lang_tag": lang.replace("_", "-"), "primary": company.primary_color,
        "secondary": company.secondary_color, "logo_url": logo_url,
        "address_lines": company.address_lines, "website_label": website.rstrip("/"),
        **(extra or {}),
    })


def finish(html: str) -> tuple[str, str]:
    """(HTML with CSS inlined and absolute links, its text/plain alternative)."""
    html = absolute_links(html)
    try:
        html = _inliner().inline(html)
    except css_inline.InlineError:  # broken CSS in a user's body: send it as written
        pass
    return html, html_to_plain(html)
