from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from mailroom.core import services


@login_required
@require_POST
def switch_company(request):
    """Make another of the user's companies current, then go back where the user was."""
    try:
        company = services.switch_company(request.user, int(request.POST.get("company", "")))
    except (ValueError, ValidationError):
        return HttpResponseBadRequest("You do not belong to that company.")
    messages.success(request, f"You are now working in {company.name}.")
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
        target = "/"
    # a record page of the previous company would 404 in lists; land on its list instead
    return redirect(target)
