from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from mailroom.core import services
from mailroom.core.models import Company


@login_required
@require_POST
def switch_company(request):
    """Make another of the user's companies current (the header's switcher posts here), then
    go back where the user was: lists then show the new company's rows, and record pages of
    the previous company still open because they are scoped to all of the user's companies."""
    try:
        company = services.switch_company(request.user, int(request.POST.get("company", "")))
    except (ValueError, ValidationError, Company.DoesNotExist):
        return HttpResponseBadRequest("You do not belong to that company.")
    messages.success(request, f"You are now working in {company.name}.")
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, {request.get_host()},
                                           require_https=request.is_secure()):
        target = "/"
    return redirect(_without_page_number(target))


def _without_page_number(url: str) -> str:
    """A list's page 7 may not exist in the other company: start lists at their first page."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "p"]
    return urlunsplit(parts._replace(query=urlencode(query)))
