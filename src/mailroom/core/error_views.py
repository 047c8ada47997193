"""The 403, 404 and 500 pages (Django calls them only with DEBUG off).

403 and 404 show inside the back-office frame (sidebar, header) for a signed-in office user,
and as a plain page with the same look otherwise. The 500 page needs neither the database nor
a request context: whatever broke may be either.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpResponseServerError
from django.shortcuts import render
from django.template import loader
from django.views.decorators.csrf import requires_csrf_token

PAGES = {
    403: ("403.html", "You may not open this page",
          "Your role does not allow it. An Administrator can give you the access you need."),
    404: ("404.html", "Page not found",
          "The page may have moved, or the record was deleted or belongs to another company."),
}


def _reason(status: int, exception) -> str:
    """A refusal's message, written for the user ("Only administrators can change taxes.").
    A 404's never shows: Django's own name files on disk and URL patterns."""
    args = getattr(exception, "args", ()) if status == 403 else ()
    return args[0] if args and isinstance(args[0], str) else ""


def _framed(request) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_active
                and user.is_staff)


def _page(request, status: int, exception):
    template, title, hint = PAGES[status]
    framed = _framed(request)
    context = {**(admin.site.each_context(request) if framed else {}),
               "framed": framed, "title": title, "hint": hint, "status": status,
               "reason": _reason(status, exception), "request_path": request.path}
    return render(request, template, context, status=status)


@requires_csrf_token
def permission_denied(request, exception=None):
    return _page(request, 403, exception)


@requires_csrf_token
def page_not_found(request, exception=None):
    return _page(request, 404, exception)


@requires_csrf_token
def server_error(request):
    """Rendered with a bare dict, never a RequestContext: no context processor (the session,
    the user, hence the database) runs."""
    return HttpResponseServerError(loader.get_template("500.html").render({"status": 500}))
