"""The digest email of one recipient (issue 13, item 3). A first cut: helper-owned file."""

from __future__ import annotations

from django.template.loader import render_to_string

from mailroom.activities.mail import system_sender
from mailroom.templating.layout import finish, wrap


def subject_for(digest, period) -> str:
    return f"{digest.name}: {period.first_day:%d %b %Y}"


def build(digest, user, period, *, board, tip, notice: bool, manual: bool) -> dict:
    """The `enqueue_many` item for `user`: subject, html, text, headers, attachments."""
    company = digest.company
    rows = board.rows(company, digest.kpis, user, period)
    subject = subject_for(digest, period)
    body = render_to_string("digests/mail_body.html", {
        "digest": digest, "user": user, "rows": rows, "tip": tip, "notice": notice})
    html = wrap(body, company=company, subject=subject,
                lang=user.language or company.language, layout="branded")
    html, text = finish(html)
    return {"email_from": system_sender(company) or f"{company.name} <noreply@localhost>",
            "to": [(user.get_full_name() or user.username, user.email)],
            "subject": subject, "html": html, "text": text, "is_automatic": True}
