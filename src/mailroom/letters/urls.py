"""/letters/…: pages beyond the admin."""

from django.urls import path

from mailroom.letters import views

app_name = "letters"

urlpatterns = [
    path("send/<int:content_type_id>/<int:object_id>/", views.send_page, name="send"),
    path("send/<int:content_type_id>/", views.send_many_page, name="send_many"),
    path("<int:pk>/pdf/", views.letter_pdf, name="letter_pdf"),
    path("batches/<int:pk>/pdf/", views.batch_pdf, name="batch_pdf"),
    path("webhooks/<int:provider_id>/", views.provider_webhook, name="webhook"),
]
