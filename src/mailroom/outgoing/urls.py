from django.urls import path

from mailroom.outgoing import views

app_name = "outgoing"
urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("mails/<int:pk>/body/", views.mail_body, name="mail_body"),
    path("mails/<int:pk>/<slug:action>/", views.mail_action, name="mail_action"),
]
