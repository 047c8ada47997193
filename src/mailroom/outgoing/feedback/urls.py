from django.urls import path

from mailroom.outgoing.feedback import views

app_name = "feedback_hooks"
urlpatterns = [
    path("feedback/<str:token>/", views.receive, name="receive"),
]
