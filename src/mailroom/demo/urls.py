from django.urls import path

from mailroom.demo import views

app_name = "demo"
urlpatterns = [
    path("caught-mail/", views.caught_list, name="caught_list"),
    path("caught-mail/<int:pk>/", views.caught_detail, name="caught_detail"),
    path("caught-mail/<int:pk>/body/", views.caught_body, name="caught_body"),
    path("caught-mail/<int:pk>/raw/", views.caught_raw, name="caught_raw"),
]
