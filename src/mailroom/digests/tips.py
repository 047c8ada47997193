"""Which tip a user gets next, how it reads for them, and the numbers behind each tip
(issue 13, item 5).

- Targeting: a company's users may get Mailroom's own tips (no company) and the company's,
  when active, when the tip's `roles` is empty or holds one of the user's roles
  (`User.has_role`: Administrators hold every role), and when the user may view every record
  type of the tip's `record_types` (`<app>.view_<model>`).
- Rotation: the first tip by (sequence, id) the user has never been shown; once all are seen,
  they cycle, least recently shown first.
- `pick(user, company)` chooses without writing (previews use it); `pick_many` does the same
  for a chunk of recipients in a constant number of queries (tips with their translations,
  the users' roles, their view permissions, their TipView rows); `record_shown` counts the
  shows in the sending transaction.
- `render(tip, user, company)`: the title and body in the user's language, the body rendered
  in the template sandbox with only `user` (name, first_name) and `company` (name), sanitized,
  every web link wrapped in a signed click redirect (tip_links).
"""

from __future__ import annotations

import html
import logging
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.models import Permission
from django.db.models import Case, F, IntegerField, Value, When

from mailroom.core.models import User
from mailroom.core.roles import Role
from mailroom.digests.models import Tip, TipView
from mailroom.digests.tip_links import absolute, click_url, links, redirectable
from mailroom.lib.html import sanitize_html
from mailroom.lib.sandbox import TemplateError, render_string

__all__ = ["SCHEMA", "context_for", "eligible", "links", "pick", "pick_many", "record_shown",
           "render", "translation_for"]

log = logging.getLogger("mailroom.digests")

# What a tip's body may read: checked at save (tip_services.validate_body), held at render.
SCHEMA = {"user": {"name": None, "first_name": None}, "company": {"name": None}}


# --- who may get which tip ---------------------------------------------------------------------

def _view_perm(record_type: str) -> str:
    app, _, model = record_type.partition(".")
    return f"{app}.view_{model}"


def _load_roles(users: list) -> None:
    """Fill each user's role cache (`User.role_names()`) with one query for all of them."""
    missing = [u for u in users if getattr(u, "_role_names", None) is None]
    if not missing:
        return
    names: dict[int, set[str]] = {u.pk: set() for u in missing}
    rows = User.groups.through.objects.filter(user_id__in=names).values_list("user_id",
                                                                            "group__name")
    for user_id, name in rows:
        names[user_id].add(name)
    for user in missing:
        user._role_names = names[user.pk]


def _view_perms(users: list, wanted: set[str]) -> dict[int, set[str]]:
    """The permissions of `wanted` each user holds, as Django's ModelBackend grants them
    (the user's own plus their groups'; superusers all; inactive users none) — two queries
    for the whole chunk instead of two per user."""
    if not wanted:
        return {u.pk: set() for u in users}
    codenames = {p.split(".", 1)[1] for p in wanted}
    group_ids = {u.pk: set() for u in users}
    for user_id, group_id in User.groups.through.objects.filter(
            user_id__in=group_ids).values_list("user_id", "group_id"):
        group_ids[user_id].add(group_id)
    all_groups = set().union(*group_ids.values()) if group_ids else set()
    by_group: dict[int, set[str]] = defaultdict(set)
    for group_id, app, codename in Permission.objects.filter(
            group__in=all_groups, codename__in=codenames).values_list(
            "group__id", "content_type__app_label", "codename"):
        by_group[group_id].add(f"{app}.{codename}")
    own: dict[int, set[str]] = defaultdict(set)
    for user_id, app, codename in User.user_permissions.through.objects.filter(
            user_id__in=group_ids, permission__codename__in=codenames).values_list(
            "user_id", "permission__content_type__app_label", "permission__codename"):
        own[user_id].add(f"{app}.{codename}")
    result = {}
    for user in users:
        if not user.is_active:
            result[user.pk] = set()
        elif user.is_superuser:
            result[user.pk] = set(wanted)
        else:
            held = set(own[user.pk])
            for group_id in group_ids[user.pk]:
                held |= by_group[group_id]
            result[user.pk] = held & wanted
    return result


def _targets(tip: Tip, user, perms: set[str]) -> bool:
    if tip.roles:
        roles = [Role(r) for r in tip.roles if r in Role._value2member_map_]
        if not any(user.has_role(role) for role in roles):
            return False
    return all(_view_perm(rt) in perms for rt in tip.record_types or [])


def _company_tips(company) -> list[Tip]:
    return list(Tip.objects.for_company(company).filter(active=True)
                .prefetch_related("translations").order_by("sequence", "id"))


def eligible(users: Iterable, company, tips: list[Tip] | None = None) -> dict[int, list[Tip]]:
    """{user pk: the tips the user may get, by (sequence, id)}. Users with the same roles
    and permissions share one computation."""
    users = list(users)
    tips = _company_tips(company) if tips is None else tips
    if not tips or not users:
        return {u.pk: [] for u in users}
    _load_roles(users)
    wanted = {_view_perm(rt) for tip in tips for rt in tip.record_types or []}
    perms = _view_perms(users, wanted)
    cache: dict[tuple, list[Tip]] = {}
    result = {}
    for user in users:
        key = (user.is_active, user.is_superuser, frozenset(user.role_names()),
               frozenset(perms[user.pk]))
        if key not in cache:
            cache[key] = [t for t in tips if _targets(t, user, perms[user.pk])]
        result[user.pk] = cache[key]
    return result


# --- rotation ----------------------------------------------------------------------------------

def _next(tips: list[Tip], seen: dict[int, datetime]) -> Tip | None:
    for tip in tips:
        if tip.pk not in seen:
            return tip
    if not tips:
        return None
    # every tip seen: cycle, the least recently shown first (ties: by sequence)
    return min(tips, key=lambda t: (seen[t.pk], t.sequence, t.pk))


def pick_many(users, company, *, now: datetime | None = None) -> dict[int, Tip | None]:
    """{user pk: the tip the user gets next (None: no tip for them)}; writes nothing."""
    users = list(users)
    tips = _company_tips(company)
    if not tips or not users:
        return {u.pk: None for u in users}
    targeted = eligible(users, company, tips)
    seen: dict[int, dict[int, datetime]] = defaultdict(dict)
    for user_id, tip_id, shown_at in TipView.objects.filter(
            user__in=[u.pk for u in users], tip__in=[t.pk for t in tips],
            shown_count__gt=0).values_list("user_id", "tip_id", "last_shown_at"):
        seen[user_id][tip_id] = shown_at
    return {u.pk: _next(targeted[u.pk], seen[u.pk]) for u in users}


def pick(user, company, *, now: datetime | None = None) -> Tip | None:
    return pick_many([user], company, now=now)[user.pk]


def record_shown(pairs, *, now: datetime) -> None:
    """Count each (tip, user) pair as one show at `now`: the user's TipView (created when
    new) and the tip's shown count, with F() expressions so concurrent senders add up.
    Queries: one insert, one update per distinct tip, one update of the tips."""
    pairs = [(tip, user) for tip, user in pairs if tip is not None]
    if not pairs:
        return
    per_tip: dict[int, list[int]] = defaultdict(list)
    for tip, user in pairs:
        per_tip[tip.pk].append(user.pk)
    TipView.objects.bulk_create(
        [TipView(tip_id=tip_id, user_id=user_id, shown_count=0, last_shown_at=now)
         for tip_id, user_ids in per_tip.items() for user_id in dict.fromkeys(user_ids)],
        ignore_conflicts=True)
    for tip_id, user_ids in per_tip.items():
        # a user shown the same tip twice in one batch is one show (one digest each)
        TipView.objects.filter(tip_id=tip_id, user_id__in=set(user_ids)).update(
            shown_count=F("shown_count") + 1, last_shown_at=now)
    added = {tip_id: len(set(user_ids)) for tip_id, user_ids in per_tip.items()}
    Tip.objects.filter(pk__in=added).update(shown_count=F("shown_count") + Case(
        *[When(pk=tip_id, then=Value(n)) for tip_id, n in added.items()],
        default=Value(0), output_field=IntegerField()))


# --- how a tip reads ---------------------------------------------------------------------------

def _base(language: str) -> str:
    return (language or "").split("_")[0].lower()


def translation_for(tip: Tip, language: str) -> tuple[str, str]:
    """(title, body source) in `language`: its translation, else one in the same language
    (fr_FR for fr_CA, en_US for en_GB), else the tip's own."""
    translations = list(tip.translations.all())
    found = next((t for t in translations if t.language == language), None)
    if found is None and language:
        found = next((t for t in translations if _base(t.language) == _base(language)), None)
    if found is None:
        return tip.title, tip.body
    return found.title or tip.title, found.body or tip.body


def context_for(user, company) -> dict:
    """The only data a tip's body sees: plain values, never the ORM objects."""
    full = (user.get_full_name() if hasattr(user, "get_full_name") else "") or user.username
    return {"user": {"name": full, "first_name": user.first_name or full},
            "company": {"name": company.name if company is not None else ""}}


_HREF = re.compile(r'(<a\b[^>]*?\bhref=")([^"]*)(")', re.I)


def _wrap_links(body: str, tip: Tip, user) -> str:
    """Every web link of a sanitized body through the signed click redirect. The sanitizer
    writes attributes double-quoted and entity-escaped, so this pattern sees them all."""
    def replace(match: re.Match) -> str:
        target = absolute(html.unescape(match[2]))
        if not redirectable(target):
            return match[0]
        return f"{match[1]}{html.escape(click_url(tip, user, target), quote=True)}{match[3]}"
    return _HREF.sub(replace, body)


def render(tip: Tip, user, company) -> tuple[str, str]:
    """(title, body HTML) of `tip` for `user`. A body that cannot render (it was checked at
    save, so only a shipped tip edited outside the admin) is logged and left out."""
    # the language the rest of the digest is in (mail.locale_of): the user's, else the
    # company's — a user who never chose one reads the tip as they read the numbers
    lang = getattr(user, "language", "") or getattr(company, "language", "") or "en_US"
    title, source = translation_for(tip, lang)
    try:
        body = render_string(source, context_for(user, company), name=f"Tip {title}",
                             field="description", html=True, locale=lang,
                             timezone=getattr(company, "timezone", "") or "UTC")
    except TemplateError:
        log.warning("digests: tip %s could not be rendered for user %s", tip.pk, user.pk,
                    exc_info=True)
        return title, ""
    return title, _wrap_links(sanitize_html(body), tip, user)

