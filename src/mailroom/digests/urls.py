"""/digests/…: the signed links in digest emails (unsubscribe, restore, tips) and the
back-office pages beyond the admin (preview, send now)."""

from mailroom.digests import public_urls, tip_urls, view_urls

app_name = "digests"

urlpatterns = public_urls.urlpatterns + tip_urls.urlpatterns + view_urls.urlpatterns
