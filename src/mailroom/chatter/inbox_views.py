"""The inbox page and the header bell: what every app has for the signed-in user.

The bell polls `inbox/bell/` with htmx every 20 seconds (no external service); the page lists
every source's items, newest first, unread first within a source's own order, with Mark
read / Mark unread per line and Mark all read. Marking goes through each source's `mark`.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from mailroom.chatter.inbox import inbox_count, inbox_source, inbox_sources
from mailroom.chatter.templatetags.chatter import poll_seconds
from mailroom.core.decorators import office_user_required

PAGE_ITEMS = 50


def _items(user, show: str) -> list:
    items = []
    for source in inbox_sources():
        items += source.items(user, PAGE_ITEMS)
    if show == "unread":
        items = [item for item in items if item.unread]
    items.sort(key=lambda item: item.when, reverse=True)
    return items[:PAGE_ITEMS * 2]


@office_user_required
@require_GET
def inbox(request):
    show = "unread" if request.GET.get("show") == "unread" else "all"
    context = {
        **admin.site.each_context(request),
        "title": "Inbox",
        "items": _items(request.user, show),
        "show": show,
        "count": inbox_count(request.user),
        "sources": inbox_sources(),
        "poll_seconds": poll_seconds(),
    }
    return render(request, "chatter/inbox.html", context)


@office_user_required
@require_GET
def bell(request):
    return render(request, "chatter/partials/inbox_bell.html",
                  {"count": inbox_count(request.user), "poll_seconds": poll_seconds()})


@office_user_required
@require_POST
def mark(request):
    """Mark one item (source + key) or every notification ("all") read or unread; answers the
    refreshed list (htmx) and tells the bell to refresh."""
    source = inbox_source(request.POST.get("source", ""))
    key = request.POST.get("key", "")[:40]
    read = request.POST.get("read", "1") != "0"
    if source is None or source.mark is None or not key:
        return HttpResponseBadRequest("This item cannot be marked read.")
    source.mark(request.user, key, read)
    show = "unread" if request.POST.get("show") == "unread" else "all"
    response = render(request, "chatter/partials/inbox_list.html",
                      {"items": _items(request.user, show), "show": show})
    response["HX-Trigger"] = "inbox-changed"
    return response
