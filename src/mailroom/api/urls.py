"""/api/v1/… (the ninja API), /api/docs and /api/openapi.json."""

from functools import partial

from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from ninja.openapi.views import openapi_json

from mailroom.api import docs
from mailroom.api.errors import error_response
from mailroom.api.site import api


@csrf_exempt  # a POST to an unknown path is a 404, not a CSRF 403 page
def unknown(request, rest: str = ""):
    """Unknown API paths answer in the API's error shape, not with an HTML page."""
    return error_response(404, "No such endpoint.")


urlpatterns = [
    path("v1/", api.urls),
    path("openapi.json", partial(openapi_json, api=api), name="api-openapi"),
    path("docs", docs.docs, name="api-docs"),
    path("docs/assets/<str:name>", docs.asset, name="api-docs-asset"),
    re_path(r"^(?P<rest>.*)$", unknown),  # not the admin's catch-all login redirect
]
