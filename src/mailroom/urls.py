from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("api/", include("mailroom.api.urls")),
    path("chatter/", include("mailroom.chatter.urls")),
    path("company/", include("mailroom.core.urls")),
    path("", admin.site.urls),
]
