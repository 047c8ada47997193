"""The composer's pickers: contacts of the record's company for the recipients chips, and
the company's active users for the chatter's @-mentions. JSON for small scripts
(`templating/composer.js`, `templating/mentions.js`); scoped by `get_record_for_user` (another
company's record is a 404) and to the record's own company."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.http import Http404, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.http import require_GET

from mailroom.chatter.models import Follower
from mailroom.chatter.services import get_record_for_user
from mailroom.contacts.models import Partner
from mailroom.core.decorators import office_user_required

LIMIT = 10


def partner_item(partner: Partner) -> dict:
    return {"id": partner.pk, "name": partner.name, "email": partner.email,
            "blacklisted": partner.is_blacklisted}


def contacts_of(record, user):
    """Contacts the user may pick for `record`: active ones of the record's company."""
    return Partner.objects.for_user(user).filter(company_id=record.company_id, active=True)


def followers_to_propose(record, user) -> list[Partner]:
    """The record's followers with an address, the signed-in user's own contact excepted."""
    content_type = ContentType.objects.get_for_model(record, for_concrete_model=True)
    ids = Follower.objects.filter(company_id=record.company_id, content_type=content_type,
                                  object_id=record.pk).values_list("partner_id", flat=True)
    return list(contacts_of(record, user).filter(pk__in=ids).exclude(email="").exclude(
        user=user).order_by("name"))


@office_user_required
@require_GET
def recipients(request, content_type_id: int, object_id: int):
    """`?q=`: up to 10 contacts whose name or address contains q, with an address."""
    record = get_record_for_user(content_type_id, object_id, request.user)
    q = request.GET.get("q", "").strip()[:100]
    found = contacts_of(record, request.user).exclude(email="")
    if q:
        found = found.filter(Q(name__icontains=q) | Q(email__icontains=q))
    return JsonResponse({"results": [partner_item(p) for p in found.order_by("name")[:LIMIT]]})


def _record_of_panel(request):
    try:
        match = resolve(request.GET.get("panel", ""))
    except Resolver404:
        raise Http404("No such record.") from None
    if match.view_name != "chatter:panel":
        raise Http404("No such record.")
    return get_record_for_user(match.kwargs["content_type_id"], match.kwargs["object_id"],
                               request.user)


@office_user_required
@require_GET
def mention_users(request):
    """`?panel=/chatter/<ct>/<id>/&q=`: active users of the record's company whose login or
    name starts with q — what `@login` in the chatter composer reaches."""
    record = _record_of_panel(request)
    q = request.GET.get("q", "").strip()[:100]
    users = get_user_model().objects.filter(is_active=True, companies=record.company_id)
    if q:
        users = users.filter(Q(username__istartswith=q) | Q(first_name__istartswith=q)
                             | Q(last_name__istartswith=q) | Q(email__istartswith=q))
    return JsonResponse({"results": [
        {"login": u.username, "name": u.get_full_name() or u.username}
        for u in users.order_by("username").distinct()[:LIMIT]]})
