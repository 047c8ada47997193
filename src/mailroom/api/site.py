"""The NinjaAPI instance: auth, the error shape, and the routers.

Routers come from this package (account, record_routes built from the registry) and from any
installed app that ships an `api.py` with a `router` (and optionally a `prefix`).
"""

from __future__ import annotations

import importlib

from django.apps import apps
from ninja import NinjaAPI

from mailroom.api import account, errors, openapi, record_routes
from mailroom.api.auth import AUTH

DESCRIPTION = """\
Mailroom's REST API. Authenticate with a per-user key (`mailroom apikey create --user NAME`)
sent as `Authorization: Bearer mr_…` or `X-API-Key: mr_…`; a logged-in browser session works
too (unsafe methods then need the CSRF token).

You see the rows of the companies you belong to; rows of other companies answer 404.
Every error body has one shape: `{"detail": [{"field": "email", "message": "…"}]}`
(`field` is null when no single field is at fault).
"""


def _app_routers(api: NinjaAPI) -> None:
    for config in apps.get_app_configs():
        if not config.name.startswith("mailroom.") or config.name == "mailroom.api":
            continue
        name = f"{config.name}.api"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        router = getattr(module, "router", None)
        if router is not None:
            api.add_router(getattr(module, "prefix", ""), router)


class MailroomAPI(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        return openapi.tidy(schema)


def build_api() -> NinjaAPI:
    api = MailroomAPI(
        title="Mailroom API",
        version="1.0",
        description=DESCRIPTION,
        auth=AUTH,
        urls_namespace="api-v1",
        docs_url=None,  # the docs page lives at /api/docs (see urls.py), with local assets
        openapi_url="/openapi.json",
    )
    errors.install(api)
    api.add_router("", account.router)
    api.add_router("", record_routes.build_router())
    _app_routers(api)
    return api


api = build_api()
