from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve

urlpatterns = [
    path("api/", include("mailroom.api.urls")),
    path("chatter/", include("mailroom.chatter.urls")),
    path("company/", include("mailroom.core.urls")),
    # company logos are public (mail clients load them); nothing else under media/ is served
    re_path(r"^media/(?P<path>logos/[\w.\-]+)$", serve, {"document_root": settings.MEDIA_ROOT}),
    path("", admin.site.urls),
]
