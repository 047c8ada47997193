"""The digest email of one recipient (issue 13, items 3 and 4).

`build` returns one `outgoing.services.enqueue_many` item: the numbers the recipient may see
(board.rows), formatted in their language (the user's, else the company's), each with its
change on the previous period in words and arrow (colour only repeats what the words say),
a small trend chart as an inline PNG (`cid:`; drawn once per company, KPI and period by the
board), a link to the list behind it, the tip, the slow-down notice when the digest was just
made less frequent, and a footer saying why it came with a one-click unsubscribe
(List-Unsubscribe + List-Unsubscribe-Post, RFC 8058, both DKIM-signed).

`preview` renders the same HTML for a browser, with the charts as data: URIs.
"""

from __future__ import annotations

import base64
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal

from babel import dates as babel_dates
from django.conf import settings
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from mailroom.activities.mail import system_sender
from mailroom.core.kpis import Unit
from mailroom.digests import charts, tips, unsubscribe, wording
from mailroom.digests.models import SLOWDOWN_AFTER, SLOWER, Periodicity
from mailroom.lib import formatting
from mailroom.outgoing.services import FileToSend
from mailroom.templating.layout import finish, wrap

GOOD, BAD, NEUTRAL = "#15803d", "#b91c1c", "#6b7280"
PREFERENCES_PATH = "/company/preferences/"


# --- formatting ---------------------------------------------------------------------------

def locale_of(user, company) -> str:
    return formatting.first_locale(getattr(user, "language", ""), company.language)


def period_label(period, locale: str) -> str:
    """"Sun, Dec 6, 2026", "30 Nov – 6 Dec 2026", "November 2026", "Q4 2026" (in `locale`)."""
    code = formatting.normalize_locale(locale)
    if period.periodicity == Periodicity.WEEKLY:
        label = babel_dates.format_interval(period.first_day, period.last_day, "yMMMd",
                                            locale=code)
    else:
        skeleton = {Periodicity.DAILY: "yMMMEd", Periodicity.MONTHLY: "yMMMM",
                    Periodicity.QUARTERLY: "yQQQ"}[period.periodicity]
        label = babel_dates.format_skeleton(skeleton, period.first_day, locale=code)
    return label.replace("\u2009", " ")  # CLDR's thin spaces around the dash: plain ones


def subject_for(digest, period, locale: str = "en_US") -> str:
    return f"{digest.name} · {period_label(period, locale)}"


def format_duration(seconds, locale: str) -> str:
    """3 h 20 min, 45 min, 30 s (numbers in `locale`)."""
    total = int(round(float(seconds)))
    sign, total = ("-" if total < 0 else ""), abs(total)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    number = lambda n: formatting.format_number(n, locale)  # noqa: E731
    if hours:
        text = f"{number(hours)} h" + (f" {number(minutes)} min" if minutes else "")
    elif minutes:
        text = f"{number(minutes)} min"
    else:
        text = f"{number(secs)} s"
    return sign + text


def format_value(value, unit: str, locale: str, currency: str) -> str:
    """A KPI value by its unit; "not available" (in the active language) for None."""
    if value is None:
        return gettext(wording.NOT_AVAILABLE)
    if unit == Unit.MONEY:
        return formatting.format_money(value, currency, locale)
    if unit == Unit.DURATION:
        return format_duration(value, locale)
    if unit == Unit.PERCENT:
        number = Decimal(str(value)) / 100
        whole = number * 100 == (number * 100).to_integral_value()
        return formatting.format_percent(number, locale, digits=0 if whole else 1)
    number = Decimal(str(value))
    if number != number.to_integral_value():  # an average: one decimal is enough to read
        return formatting.format_number(number, locale, digits=1)
    return formatting.format_number(number, locale)


def _change_percent(change: float, locale: str) -> str:
    size = abs(change)
    return formatting.format_percent(Decimal(str(size)) / 100, locale,
                                     digits=0 if size >= 10 or size == int(size) else 1)


def change_words(row, locale: str) -> tuple[str, str, str]:
    """(arrow, words, colour) for the change on the previous period, in the active language.
    The words carry the meaning; arrow and colour repeat it."""
    periodicity = row.period.periodicity
    if row.value is None:
        return "", gettext(wording.NOT_COMPUTED), NEUTRAL
    if row.previous is None:
        return "", wording.say(wording.NOTHING, periodicity), NEUTRAL
    if row.direction == "flat":
        return "=", wording.say(wording.SAME, periodicity), NEUTRAL
    colour = GOOD if row.good else BAD
    arrow = "▲" if row.direction == "up" else "▼"
    change = row.change
    if change is None:  # the previous period was 0
        table = wording.FROM_ZERO if row.direction == "up" else wording.BELOW_ZERO
        return arrow, wording.say(table, periodicity), colour
    table = wording.UP if row.direction == "up" else wording.DOWN
    return arrow, wording.say(table, periodicity, change=_change_percent(change, locale)), \
        colour


def chart_alt(row, locale: str, currency: str) -> str:
    values = ", ".join(gettext(wording.N_A) if v is None
                       else format_value(v, row.kpi.unit, locale, currency)
                       for v in row.history)
    return wording.say(wording.HISTORY, row.period.periodicity, label=wording.label(row.kpi),
                       count=len(row.history), values=values)


def absolute(path: str) -> str:
    if not path or "://" in path:
        return path
    return settings.BASE_URL.rstrip("/") + "/" + path.lstrip("/")


# --- the email ------------------------------------------------------------------------------

@dataclass
class Rendered:
    subject: str
    html: str  # the final HTML (layout, inlined CSS), images as cid:
    text: str
    images: dict[str, bytes] = field(default_factory=dict)  # content id -> PNG
    headers: dict[str, str] = field(default_factory=dict)


def _tip_context(tip, user, company) -> dict | None:
    if tip is None:
        return None
    render = getattr(tips, "render", None)
    if render is not None:
        title, body = render(tip, user, company)
    else:
        title, body = tip.title, tip.body
    links = getattr(tips, "links", None)
    votes = links(tip, user) if links is not None else {}
    return {"title": title, "body": body, "yes": absolute(votes.get("yes", "")),
            "no": absolute(votes.get("no", ""))}


def _notice_context(digest, user, notice: bool) -> dict | None:
    """The slow-down announcement: now <periodicity> instead of <slowed_from>, and why."""
    if not notice or not digest.slowed_from:
        return None
    now = Periodicity(digest.periodicity)
    before = next((slow for slow, slower in SLOWER.items() if slower == now), None)
    chosen = Periodicity(digest.slowed_from)
    days = SLOWDOWN_AFTER[before].days if before in SLOWDOWN_AFTER else None
    return {"now": wording.every(now), "chosen": wording.every(chosen),
            "days": days, "url": unsubscribe.restore_url(digest, user)}


def _list_id(digest, sender: str) -> str:
    """`"Weekly pulse" <digest-12.acme.example>` (RFC 2919), ASCII only."""
    domain = sender.rpartition("@")[2].strip(" >").lower() or "localhost"
    name = unicodedata.normalize("NFKD", digest.name).encode("ascii", "ignore").decode()
    name = " ".join(name.replace("\\", "").replace('"', "").split())
    label = f"<digest-{digest.pk}.{domain}>"
    return f'"{name}" {label}' if name else label


def _kpi_section(digest, company, rows, period, locale: str, board) -> tuple[str, dict]:
    """The KPI rows as HTML, and their charts: the same for every recipient who reads the
    same language and may see the same KPIs, so `render` makes it once per such group."""
    currency = company.currency or "EUR"
    images: dict[str, bytes] = {}
    kpis = []
    for index, row in enumerate(rows):
        arrow, words, colour = change_words(row, locale)
        chart = ""
        if any(value is not None for value in row.history):  # no chart of nothing
            content_id = f"chart{index + 1}.d{digest.pk}.{period.first_day:%Y%m%d}@mailroom"
            images[content_id] = board.chart(row, charts.draw)
            chart = f"cid:{content_id}"
        kpis.append({
            "label": wording.label(row.kpi), "description": row.kpi.description,
            "value": format_value(row.value, row.kpi.unit, locale, currency),
            "available": row.value is not None,
            "previous": wording.say(wording.PREVIOUS, period.periodicity, value=format_value(
                row.previous, row.kpi.unit, locale, currency)),
            "show_previous": row.value is not None or row.previous is not None,
            "arrow": arrow, "words": words, "colour": colour,
            "chart": chart, "alt": chart_alt(row, locale, currency),
            "url": absolute(row.url),
        })
    return mark_safe(render_to_string("digests/mail_kpis.html", {"kpis": kpis})), images


def sender_of(company, board) -> str:
    return board.memo(("sender", company.pk), lambda: system_sender(company)
                      or f"{company.name} <noreply@localhost>")


def render(digest, user, period, *, board, tip, notice: bool, manual: bool = False
           ) -> Rendered:
    """The email of `user`, in their language (words, numbers, money and dates)."""
    locale = locale_of(user, digest.company)
    with wording.speaking(locale):
        return _render(digest, user, period, locale, board=board, tip=tip, notice=notice,
                       manual=manual)


def _render(digest, user, period, locale: str, *, board, tip, notice: bool, manual: bool
            ) -> Rendered:
    company = digest.company
    label = period_label(period, locale)
    subject = f"{digest.name} · {label}"
    rows = board.rows(company, digest.kpis, user, period)
    kpis_html, images = board.memo(
        ("kpis", digest.pk, period.periodicity, period.first_day, locale,
         tuple(row.kpi.key for row in rows)),
        lambda: _kpi_section(digest, company, rows, period, locale, board))
    unsubscribe_url = unsubscribe.unsubscribe_url(digest, user)
    body = render_to_string("digests/mail_body.html", {
        "digest": digest, "company": company, "user": user, "kpis_html": kpis_html,
        "period_label": label, "manual": manual,
        "compared": wording.say(wording.COMPARED, period.periodicity),
        "every": wording.every(digest.periodicity),
        "tip": _tip_context(tip, user, company),
        "notice": _notice_context(digest, user, notice),
        "unsubscribe_url": unsubscribe_url, "preferences_url": absolute(PREFERENCES_PATH),
        "digest_url": absolute(_digest_path(digest)),
    })
    html = wrap(body, company=company, subject=subject, lang=locale, layout="branded")
    html, text = finish(html)
    sender = sender_of(company, board)
    headers = {
        "X-Auto-Response-Suppress": "OOF, AutoReply",
        "List-Unsubscribe": f"<{unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": _list_id(digest, sender),
    }
    return Rendered(subject=subject, html=html, text=text, images=dict(images),
                    headers=headers)


def _digest_path(digest) -> str:
    try:
        return reverse("admin:digests_digest_change", args=[digest.pk])
    except NoReverseMatch:  # the admin is not mounted (a bare test site)
        return ""


def build(digest, user, period, *, board, tip, notice: bool, manual: bool) -> dict:
    """The `enqueue_many` item for `user`: subject, html, text, headers, inline charts."""
    company = digest.company
    rendered = render(digest, user, period, board=board, tip=tip, notice=notice,
                      manual=manual)
    return {"email_from": sender_of(company, board),
            "to": [(user.get_full_name() or user.username, user.email)],
            "subject": rendered.subject, "html": rendered.html, "text": rendered.text,
            "headers": rendered.headers, "is_automatic": True,
            "attachments": [FileToSend(f"{content_id.split('.')[0]}.png", png,
                                       mimetype="image/png", content_id=content_id)
                            for content_id, png in rendered.images.items()]}


def preview(digest, user, period, *, board, tip, notice: bool) -> tuple[str, str]:
    """(subject, HTML) for a browser: the same email, its charts as data: URIs."""
    rendered = render(digest, user, period, board=board, tip=tip, notice=notice)
    html = rendered.html
    for content_id, png in rendered.images.items():
        html = html.replace(f"cid:{content_id}",
                            "data:image/png;base64," + base64.b64encode(png).decode("ascii"))
    return rendered.subject, html
