"""/campaigns/deliverability/: the SPF, DKIM and DMARC check of each sending domain.

The company is the viewer's current one; the domains are its sending domains (a domain
that is not one of them is a 404, like another company's). Anyone who sees campaigns sees
the check; "Check again" asks DNS afresh instead of the few minutes' cache.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from mailroom.campaigns import campaign_services
from mailroom.core.access import allowed
from mailroom.core.decorators import office_user_required

VIEW_PERM = "campaigns.view_campaign"


@require_GET
@office_user_required
def deliverability_page(request):
    company = request.user.current_company
    if company is None or not allowed(request.user, VIEW_PERM):
        raise Http404("No deliverability check here.")
    domains = sorted(campaign_services.sending_domains(company))
    chosen = (request.GET.get("domain") or "").strip().lower()
    if chosen and chosen not in domains:
        raise Http404("That is not one of this company's sending domains.")
    chosen = chosen or (domains[0] if domains else "")
    # local: dnspython, pyspf and dkimpy cost ~0.3 s to import, and the URLconf imports this
    from mailroom.campaigns import deliverability

    report = deliverability.check_domain(company, chosen, fresh=request.GET.get("fresh") == "1") \
        if chosen else None
    return render(request, "campaigns/deliverability.html", {
        **admin.site.each_context(request), "title": "Deliverability", "domains": domains,
        "chosen": chosen, "report": report, "company": company,
        "here": reverse("campaigns:deliverability"),
    })
