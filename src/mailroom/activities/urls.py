from django.urls import path

from mailroom.activities import views

app_name = "activities"

urlpatterns = [
    path("<int:content_type_id>/<int:object_id>/", views.panel, name="panel"),
    path("<int:content_type_id>/<int:object_id>/schedule/", views.schedule, name="schedule"),
    path("<int:activity_id>/done/", views.done, name="done"),
    path("<int:activity_id>/cancel/", views.cancel, name="cancel"),
    path("<int:activity_id>/decide/", views.decide, name="decide_in_panel"),
    path("approval/<str:token>/", views.decide_by_link, name="decide"),
]
