"""/api/v1/… (the ninja API), /api/docs and /api/openapi.json."""

from functools import partial

from django.http import JsonResponse
from django.urls import path
from ninja.openapi.views import openapi_json

from mailroom.api import docs
from mailroom.api.site import api


def unknown(request, rest: str = ""):
    """Unknown API paths answer in the API's error shape, not with an HTML page."""
    return JsonResponse({"detail": [{"field": None, "message": "No such endpoint."}]},
                        status=404)


urlpatterns = [
    path("v1/", api.urls),
    path("v1/<path:rest>", unknown),
    path("openapi.json", partial(openapi_json, api=api), name="api-openapi"),
    path("docs", docs.docs, name="api-docs"),
    path("docs/assets/<str:name>", docs.asset, name="api-docs-asset"),
]
