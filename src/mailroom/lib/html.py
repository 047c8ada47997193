"""HTML helpers (no Django): sanitize user/inbound HTML with nh3 and derive plain text."""

from __future__ import annotations

import html as _html
import re

import nh3

_ALLOWED_TAGS = set(nh3.ALLOWED_TAGS) | {
    "span", "div", "p", "br", "hr", "img", "table", "thead", "tbody", "tfoot", "tr", "td", "th",
    "h1", "h2", "h3", "h4", "h5", "h6", "pre", "code", "blockquote", "u", "s", "small", "font",
    "center",
}
_ALLOWED_ATTRIBUTES = {
    "*": {"style", "class", "align", "title", "dir", "lang"},
    "a": {"href", "name", "target"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "width", "valign", "bgcolor"},
    "th": {"colspan", "rowspan", "width", "valign", "bgcolor"},
    "table": {"width", "cellpadding", "cellspacing", "border", "bgcolor"},
    "font": {"color", "face", "size"},
}
# Inline styles are how mail is formatted, but positioning could overlay the UI: keep only
# typography, box and table properties.
_STYLE_PROPERTIES = {
    "color", "background-color", "background", "font", "font-family", "font-size",
    "font-style", "font-weight", "line-height", "letter-spacing", "text-align",
    "text-decoration", "text-transform", "vertical-align", "white-space", "word-break",
    "margin", "margin-top", "margin-right", "margin-bottom", "margin-left", "padding",
    "padding-top", "padding-right", "padding-bottom", "padding-left", "border",
    "border-top", "border-right", "border-bottom", "border-left", "border-color",
    "border-style", "border-width", "border-radius", "border-collapse", "border-spacing",
    "width", "max-width", "min-width", "height", "max-height", "min-height", "display",
    "list-style", "list-style-type",
}
_URL_SCHEMES = {"http", "https", "mailto", "tel", "cid", "data"}


def sanitize_html(value: str) -> str:
    """Strip scripts, event handlers and dangerous URLs; keep mail formatting."""
    if not value:
        return ""
    return nh3.clean(
        value,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        filter_style_properties=_STYLE_PROPERTIES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def text_to_html(text: str) -> str:
    """Plain text to safe HTML paragraphs, keeping line breaks."""
    paragraphs = re.split(r"\n\s*\n", (text or "").strip())
    return "".join(
        "<p>" + _html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs if p
    )


_TAG = re.compile(r"<[^>]+>")
_BLOCK_END = re.compile(r"</(p|div|tr|h[1-6]|li|table|blockquote)>|<br\s*/?>", re.I)


def html_to_text(value: str) -> str:
    """A quick plain-text rendering for previews and search (not for mail bodies)."""
    text = _BLOCK_END.sub("\n", value or "")
    text = _TAG.sub("", text)
    text = _html.unescape(text)
    return re.sub(r"\n{3,}", "\n\n", re.sub(r"[ \t]+", " ", text)).strip()
