from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve


def serve_logo(request, path: str):
    """MEDIA_ROOT is read per request so it follows the configured data dir."""
    return serve(request, path, document_root=settings.MEDIA_ROOT)


urlpatterns = [
    path("api/", include("mailroom.api.urls")),
    path("activities/", include("mailroom.activities.urls")),
    path("campaigns/", include("mailroom.campaigns.urls")),
    path("chatter/", include("mailroom.chatter.urls")),
    path("company/", include("mailroom.core.urls")),
    path("demo/", include("mailroom.demo.urls")),
    path("digests/", include("mailroom.digests.urls")),
    path("documents/", include("mailroom.documents.urls")),
    path("email/", include("mailroom.outgoing.urls")),
    path("hooks/", include("mailroom.outgoing.feedback.urls")),  # provider webhooks, no login
    path("incoming/", include("mailroom.incoming.urls")),
    path("l/", include("mailroom.campaigns.public_urls")),
    path("letters/", include("mailroom.letters.urls")),
    path("templating/", include("mailroom.templating.urls")),
    # company logos are public (mail clients load them); nothing else under media/ is served
    re_path(r"^media/(?P<path>logos/[\w.\-]+)$", serve_logo),
    path("", admin.site.urls),
]

# the error pages (used with DEBUG off): 403/404 in the back-office frame, 500 without the DB
handler403 = "mailroom.core.error_views.permission_denied"
handler404 = "mailroom.core.error_views.page_not_found"
handler500 = "mailroom.core.error_views.server_error"
