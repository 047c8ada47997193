from django.urls import path

from mailroom.incoming import views

app_name = "incoming"
urlpatterns = [
    path("test-address/", views.test_address, name="test_address"),
    path("mails/<int:pk>/raw/", views.raw, name="raw"),
    path("mails/<int:pk>/reprocess/", views.reprocess, name="reprocess"),
]
