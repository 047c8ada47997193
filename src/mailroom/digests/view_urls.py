"""URL patterns, joined in urls.py (one file per concern): the back-office pages of a digest
(views.py) and the "My digests" toggle of My preferences (prefs.py)."""

from django.urls import path

from mailroom.digests import views

urlpatterns: list = [
    path("<int:digest_id>/preview/", views.preview, name="preview"),
    path("<int:digest_id>/preview/body/", views.preview_body, name="preview_body"),
    path("<int:digest_id>/send-now/", views.send_now, name="send_now"),
    path("<int:digest_id>/active/", views.set_active, name="set_active"),
    path("<int:digest_id>/restore/", views.restore, name="restore_periodicity"),
]
