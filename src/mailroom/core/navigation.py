"""The sidebar, grouped like the spec. Apps add their groups with `add_group()` and entries with
`add()`; empty groups hide. Core owns only the groups of the mail stack and settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

# group -> position in the sidebar (business apps add theirs between 30 and 70)
GROUPS: dict[str, int] = {"Email": 10, "Incoming mail": 20, "Contacts": 80, "Settings": 90}


def add_group(group: str, position: int) -> None:
    if GROUPS.get(group, position) != position:
        raise ValueError(f"Sidebar group {group!r} is added twice at different positions")
    GROUPS[group] = position


@dataclass(frozen=True)
class Entry:
    group: str
    title: str
    icon: str
    url_name: str
    permission: str = ""  # "app_label.view_model"; empty = any signed-in user
    check: Callable | None = None
    query: str = ""  # appended to the link: "state__exact=quarantined"
    badge: str = ""  # dotted path of a callback(request) -> count, shown beside the title


ENTRIES: list[Entry] = []


def add(group: str, title: str, icon: str, url_name: str, permission: str = "",
        check: Callable | None = None, query: str = "", badge: str = "") -> None:
    if group not in GROUPS:
        raise ValueError(f"Unknown sidebar group {group!r}")
    ENTRIES.append(Entry(group, title, icon, url_name, permission, check, query, badge))


def _allowed(entry: Entry, request) -> bool:
    user = request.user
    if entry.permission and not user.has_perm(entry.permission):
        return False
    return entry.check(request) if entry.check else True


def sidebar(request) -> list[dict]:
    groups = []
    for group in sorted(GROUPS, key=GROUPS.__getitem__):
        items = []
        for entry in ENTRIES:
            if entry.group != group or not _allowed(entry, request):
                continue
            try:
                link = reverse(entry.url_name)
            except NoReverseMatch:
                continue
            item = {"title": entry.title, "icon": entry.icon,
                    "link": f"{link}?{entry.query}" if entry.query else link}
            if entry.badge:
                item["badge"] = entry.badge
            items.append(item)
        if items:
            groups.append({"title": group, "separator": True, "collapsible": True,
                           "items": items})
    return groups


def company_dropdown(request) -> list[dict]:
    """Unfold's site dropdown; the company switcher itself is a POST form in the header."""
    return []


def add_model(group: str, title: str, icon: str, model, permission_action: str = "view"):
    meta = model._meta
    add(group, title, icon, f"admin:{meta.app_label}_{meta.model_name}_changelist",
        f"{meta.app_label}.{permission_action}_{meta.model_name}")
