"""The Home page's email state: how many mails of the current company wait, failed, need a
look or went out, each a link into the email hub filtered to them, and a word when no server
can send."""

from __future__ import annotations

from django.db.models import Count, Q
from django.urls import reverse

from mailroom.chatter.dashboard import HomePanel, register_home_panel
from mailroom.outgoing.models import MailServer, OutgoingMail

State = OutgoingMail.State
# (key, label, states, what it means) — the hub link filters on exactly these states
ROWS = (
    ("queued", "Queued", (State.OUTGOING, State.SENDING), "waiting for the worker"),
    ("failed", "Failed", (State.EXCEPTION,), "not sent: open one to see why"),
    ("attention", "Needs attention", (State.DEFERRED, State.UNCERTAIN),
     "retrying, or possibly sent twice"),
    ("sent", "Sent", (State.SENT,), "accepted by the receiving server"),
)

TONES = {"failed": "danger", "attention": "warning", "sent": "success"}


def hub_link(states) -> str:
    hub = reverse("admin:outgoing_outgoingmail_changelist")
    if len(states) == 1:
        return f"{hub}?state__exact={states[0]}"
    return f"{hub}?state__in={','.join(states)}"


def email_state(request) -> dict | None:
    user = request.user
    if not user.has_perm("outgoing.view_outgoingmail"):
        return None
    counts = OutgoingMail.objects.for_current_company(user).aggregate(**{
        key: Count("id", filter=Q(state__in=states)) for key, _, states, _ in ROWS})
    rows = [{"key": key, "label": label, "count": counts[key], "help": help_text,
             "link": hub_link(states), "tone": TONES.get(key, "") if counts[key] else ""}
            for key, label, states, help_text in ROWS]
    servers = MailServer.objects.for_current_company(user).filter(active=True)
    return {
        "rows": rows,
        "hub": reverse("admin:outgoing_outgoingmail_changelist"),
        "no_server": not servers.exists(),
        "can_configure": user.has_perm("outgoing.add_mailserver"),
        "add_server": reverse("admin:outgoing_mailserver_add"),
    }


def register() -> None:
    register_home_panel(HomePanel("email_state", "outgoing/home_email_state.html",
                                  email_state, position=10))
