"""The Home page's letters panel: how many letters of the current company wait, sit in the
print room, failed or went out, each a link into Email › Letters filtered to them, and a word
when a provider is paused. Hidden until the company has sent a letter."""

from __future__ import annotations

from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from mailroom.chatter.dashboard import HomePanel, register_home_panel
from mailroom.letters.models import Letter, PostalProvider

State = Letter.State
# (key, label, state, what it means)
ROWS = (
    ("queued", "Queued", State.QUEUED, "waiting for the worker or a paused provider"),
    ("submitted", "At the printer", State.SUBMITTED, "with the provider or in the print room"),
    ("error", "Failed", State.ERROR, "not posted: open one to see why and what to do"),
    ("dispatched", "Dispatched", State.DISPATCHED, "handed to the post"),
)
TONES = {"error": "danger", "dispatched": "success"}


def letters_state(request) -> dict | None:
    user = request.user
    if not user.has_perm("letters.view_letter"):
        return None
    letters = Letter.objects.for_current_company(user)
    counts = letters.aggregate(total=Count("id"), **{
        key: Count("id", filter=Q(state=state)) for key, _, state, _ in ROWS})
    if not counts["total"]:
        return None
    listing = reverse("admin:letters_letter_changelist")
    company_id = getattr(user, "current_company_id", None)
    paused = PostalProvider.objects.for_user(user).filter(paused_until__gt=timezone.now())
    if company_id is not None:
        paused = paused.filter(company_id=company_id)
    return {
        "rows": [{"key": key, "label": label, "count": counts[key], "help": help_text,
                  "link": f"{listing}?state__exact={state}",
                  "tone": TONES.get(key, "") if counts[key] else ""}
                 for key, label, state, help_text in ROWS],
        "listing": listing,
        "paused": list(paused),
    }


def register() -> None:
    register_home_panel(HomePanel("letters_state", "letters/home_letters.html", letters_state,
                                  position=15))
