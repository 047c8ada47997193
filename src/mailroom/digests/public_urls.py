"""The signed links in digest emails: unsubscribe (one-click too) and restore the periodicity
after a slow-down. Joined in urls.py (namespace "digests")."""

from django.urls import path

from mailroom.digests import public_views

urlpatterns: list = [
    path("unsubscribe/<str:token>/", public_views.unsubscribe, name="unsubscribe"),
    path("restore/<str:token>/", public_views.restore, name="restore"),
]
