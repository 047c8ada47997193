"""URL patterns, joined in urls.py (one file per concern): the signed links of tips."""

from django.urls import path

from mailroom.digests import tip_views

urlpatterns: list = [
    path("tips/click/<str:token>/", tip_views.click, name="tip_click"),
    path("tips/useful/<str:token>/", tip_views.vote, name="tip_vote"),
]
