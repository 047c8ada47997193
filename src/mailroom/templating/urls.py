from django.urls import path

from mailroom.templating import mass_views, pickers, views

app_name = "templating"

urlpatterns = [
    path("<int:template_id>/preview/", views.preview, name="preview"),
    path("<int:template_id>/test/", views.send_test, name="send_test"),
    path("compose/", views.compose_from_panel, name="compose_from_panel"),
    path("compose/<int:content_type_id>/<int:object_id>/", views.compose, name="compose"),
    path("compose/<int:content_type_id>/<int:object_id>/fill/", views.compose_fill,
         name="compose_fill"),
    path("compose/<int:content_type_id>/<int:object_id>/recipients/", pickers.recipients,
         name="compose_recipients"),
    path("compose/<int:content_type_id>/<int:object_id>/preview/", views.compose_preview,
         name="compose_preview"),
    path("mentions/", pickers.mention_users, name="mention_users"),
    path("mass/review/", mass_views.mass_review, name="mass_review"),
    path("mass/chunk/", mass_views.mass_chunk, name="mass_chunk"),
    path("mass/jobs/<int:job_id>/", mass_views.mass_job, name="mass_job"),
    path("mass/jobs/<int:job_id>/cancel/", mass_views.mass_cancel, name="mass_cancel"),
]
