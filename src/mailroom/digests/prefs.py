""""My digests" in My preferences: the digests of the user's current company, each with a
subscribe/unsubscribe toggle. The toggle is the user's own choice (source SELF): an
administrator saving the digest later does not subscribe them again.

Registered in core's preferences page with `register_preferences()` (DigestsConfig.ready()).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from mailroom.core.access import allowed, perm
from mailroom.core.preferences import register_preference_section
from mailroom.digests.admin_digests import local_next_run
from mailroom.digests.models import Digest, DigestSubscription
from mailroom.digests.services import set_subscribed
from mailroom.lib.params import parse_id

SECTION = "digests"


def register_preferences() -> None:
    register_preference_section(SECTION, "digests/prefs_digests.html", context, save,
                                position=20)


def context(request) -> dict | None:
    user = request.user
    company = user.current_company
    if company is None or not allowed(user, perm(Digest, "view")):
        return None
    digests = list(Digest.objects.filter(company=company).select_related("company"))
    if not digests:
        return None
    rows = {s.digest_id: s for s in DigestSubscription.objects.filter(
        user=user, digest__in=digests)}
    return {"company": company, "has_email": bool(user.email), "digests": [
        {"digest": d, "subscribed": bool(rows.get(d.pk) and rows[d.pk].subscribed),
         "next_run": local_next_run(d)} for d in digests]}


def save(request) -> str:
    user = request.user
    digest_id = parse_id(request.POST.get("digest", ""))
    digest = None
    if digest_id is not None:
        digest = Digest.objects.filter(pk=digest_id, company__in=user.company_ids()).first()
    if digest is None:
        raise ValidationError("No such digest in your companies.")
    subscribed = request.POST.get("subscribed") == "1"
    set_subscribed(digest, user, subscribed, actor=user, source=DigestSubscription.Source.SELF)
    if subscribed:
        return f"You now receive “{digest}”."
    return f"You no longer receive “{digest}”."
