"""A signed-in user's use of Mailroom keeps `last_seen_at` current (digests slow down only
for people who really stay away) — at most one write every few minutes."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from mailroom.core.middleware import LAST_SEEN_EVERY
from mailroom.core.models import User


def test_a_page_view_marks_the_user_seen_once_per_interval(client_for, bob):
    client = client_for(bob)
    assert User.objects.get(pk=bob.pk).last_seen_at is None
    client.get("/")
    first = User.objects.get(pk=bob.pk).last_seen_at
    assert first is not None and timezone.now() - first < timedelta(minutes=1)
    client.get("/")
    assert User.objects.get(pk=bob.pk).last_seen_at == first  # no write within the interval
    User.objects.filter(pk=bob.pk).update(last_seen_at=first - LAST_SEEN_EVERY)
    client.get("/")
    assert User.objects.get(pk=bob.pk).last_seen_at > first - LAST_SEEN_EVERY


def test_an_anonymous_visit_writes_nothing(client, bob):
    client.get("/")
    assert User.objects.get(pk=bob.pk).last_seen_at is None
