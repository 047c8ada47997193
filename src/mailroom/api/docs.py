"""The API docs page at /api/docs: Swagger UI from django-ninja's bundled assets, served by
us (never from a CDN), reading the schema at /api/openapi.json."""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path

import ninja
from django.http import FileResponse, Http404
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from mailroom.api.site import api

ASSET_DIR = Path(ninja.__file__).parent / "static" / "ninja"
ASSETS = {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-init.js", "favicon.svg",
          "favicon.png"}


@require_GET
def docs(request):
    settings = {"url": reverse("api-openapi"), "layout": "BaseLayout", "deepLinking": True,
                "persistAuthorization": True}
    return render(request, "api/docs.html", {
        "api": api,
        "swagger_settings": json.dumps(settings),
        "csrf_token_value": get_token(request) if request.user.is_authenticated else "",
    })


@require_GET
def asset(request, name: str):
    if name not in ASSETS:
        raise Http404("No such asset.")
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = FileResponse((ASSET_DIR / name).open("rb"), content_type=content_type)
    response["Cache-Control"] = "public, max-age=86400"
    return response
