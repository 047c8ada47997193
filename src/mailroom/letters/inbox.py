"""The letters' lines in the Inbox: what waits on somebody, until it is resolved.

- Mail Managers: each paused postal provider of their companies (letters wait behind it), so
  those who chose "In Mailroom only" hear of a credit error too — the email goes to the rest.
- Everyone: the letters they sent that ended in error, with what to do.

Nothing to mark read: a line leaves when the provider resumes or the letter is retried or
cancelled.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone

from mailroom.chatter.inbox import InboxItem, InboxSource, register_inbox_source
from mailroom.letters.models import Letter, PostalProvider


def _paused(user):
    if not user.has_perm("letters.change_postalprovider"):
        return PostalProvider.objects.none()
    return PostalProvider.objects.for_user(user).filter(paused_until__gt=timezone.now())


def _failed(user):
    return Letter.objects.for_user(user).filter(created_by=user, state=Letter.State.ERROR)


def count_for_user(user) -> int:
    return _paused(user).count() + _failed(user).count()


def items_for_user(user, limit: int = 50) -> list[InboxItem]:
    items = [InboxItem(
        source="letters", key=f"provider-{provider.pk}",
        title=f"{provider.name} is paused: letters wait",
        summary=f"{provider.paused_reason} Mailroom tries again after "
                f"{timezone.localtime(provider.paused_until):%H:%M}, or press Resume.",
        when=timezone.localtime(provider.paused_until), icon="pause_circle", tone="warning",
        url=reverse("admin:letters_postalprovider_change", args=[provider.pk]),
        record_label="Postal provider") for provider in _paused(user)[:limit]]
    items += [InboxItem(
        source="letters", key=f"letter-{letter.pk}",
        title=f"Letter to {letter.address_name} not posted",
        summary=f"{letter.error_message} {letter.error_action}".strip()[:160],
        when=timezone.localtime(letter.updated_at), icon="local_post_office", tone="danger",
        url=reverse("admin:letters_letter_change", args=[letter.pk]),
        record_label=letter.record_label) for letter in _failed(user)[:limit]]
    return sorted(items, key=lambda item: item.when, reverse=True)[:limit]


def register() -> None:
    register_inbox_source(InboxSource(key="letters", label="Letters", count=count_for_user,
                                      items=items_for_user, position=55))
