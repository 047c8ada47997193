from django.urls import path

from mailroom.core import preferences, views

app_name = "core"
urlpatterns = [
    path("switch/", views.switch_company, name="switch_company"),
    path("preferences/", preferences.preferences, name="preferences"),
]
