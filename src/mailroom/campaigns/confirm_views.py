"""/l/s/<token>/: a double opt-in list's confirmation (confirmation.py). GET shows the page
with one button and changes nothing (mail scanners open every link); POST confirms."""

from __future__ import annotations

from django.http import HttpResponseNotFound
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from mailroom.campaigns import confirmation
from mailroom.campaigns.models import Subscription
from mailroom.core.throttle import client_ip


@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request, token: str):
    subscription = confirmation.read_link(token)
    if subscription is None:
        return HttpResponseNotFound(
            "This confirmation link is not valid: it may have been cut or changed. Use the "
            "link from the email itself.", content_type="text/plain; charset=utf-8")
    company = subscription.company
    lang = (subscription.partner.language or company.language or "en").replace("_", "-")
    with translation.override(lang.lower()):
        done = ""
        if request.method == "POST":
            subscription = confirmation.confirm(subscription, ip=client_ip(request))
            if subscription.status == Subscription.Status.SUBSCRIBED:
                done = _("Thank you: you are subscribed to “%(list)s”.") % {
                    "list": subscription.mailing_list.name}
        response = render(request, "campaigns/public/confirm.html", {
            "subscription": subscription, "company": company, "token": token, "done": done,
            "confirmed": subscription.status == Subscription.Status.SUBSCRIBED,
            "left": subscription.status not in (Subscription.Status.SUBSCRIBED,
                                                Subscription.Status.UNCONFIRMED),
            "logo_url": company.logo.url if company.logo else "",
            "colour": company.primary_color or "#1f6feb", "lang": translation.get_language()})
    response["X-Robots-Tag"] = "noindex"
    return response
