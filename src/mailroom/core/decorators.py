"""View decorators shared by every app's back-office pages."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.http import urlencode
from django_htmx.http import HttpResponseClientRedirect


def office_user_required(view):
    """Signed-in, active staff only. An htmx request from an expired session reloads the page
    into the login form instead of swapping the login form into the panel."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        user = request.user
        if user.is_authenticated and user.is_active and user.is_staff:
            return view(request, *args, **kwargs)
        if request.htmx:
            login = reverse("admin:login")
            here = request.htmx.current_url_abs_path or "/"
            return redirect_to_login_htmx(login, here)
        return redirect_to_login(request.get_full_path())

    return wrapper


def redirect_to_login_htmx(login_url: str, next_url: str) -> HttpResponse:
    return HttpResponseClientRedirect(f"{login_url}?{urlencode({'next': next_url})}")
