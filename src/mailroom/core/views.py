from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponseBadRequest, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from mailroom.core import services
from mailroom.core.models import Company
from mailroom.lib.params import parse_id


@login_required
@require_POST
def switch_company(request):
    """Make another of the user's companies current (the header's switcher posts here), then
    go back where the user was: lists then show the new company's rows, and record pages of
    the previous company still open because they are scoped to all of the user's companies."""
    company_id = parse_id(request.POST.get("company", ""))
    try:
        if company_id is None:
            raise Company.DoesNotExist
        company = services.switch_company(request.user, company_id)
    except (ValidationError, Company.DoesNotExist):
        return HttpResponseBadRequest("You do not belong to that company.")
    messages.success(request, f"You are now working in {company.name}.")
    target = local_target(request, request.POST.get("next", "")) or "/"
    return HttpResponseRedirect(_without_page_number(target))


def local_target(request, target: str) -> str | None:
    """`target` if it is a path on this site that can travel in a Location header, else
    None (`redirect()` would try "abc" as a URL pattern name; a control byte breaks the
    header)."""
    if (not target.startswith("/") or len(target) > 2000
            or any(ord(c) < 32 or ord(c) == 127 for c in target)):
        return None
    if not url_has_allowed_host_and_scheme(target, {request.get_host()},
                                           require_https=request.is_secure()):
        return None
    return target


def _without_page_number(url: str) -> str:
    """A list's page 7 may not exist in the other company: start lists at their first page."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "p"]
    return urlunsplit(parts._replace(query=urlencode(query)))
