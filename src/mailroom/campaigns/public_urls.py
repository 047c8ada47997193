"""/l/…: the pages a campaign's recipients reach from a mail, without signing in (signed
tokens, see tokens.py and links.py)."""

from django.urls import path

from mailroom.campaigns import confirm_views, public_views, tracking_views

app_name = "campaigns_public"

urlpatterns = [
    path("u/<str:token>/", public_views.preferences, name="preferences"),
    path("u/<str:token>/one-click", public_views.one_click, name="one_click"),
    path("s/<str:token>/", confirm_views.confirm, name="confirm"),
    path("o/<str:token>.gif", tracking_views.open_pixel, name="open"),
    path("c/<str:token>/<int:number>", tracking_views.click, name="click"),
]
