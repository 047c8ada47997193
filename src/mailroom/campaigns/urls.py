"""/campaigns/…: pages beyond the admin."""

from django.urls import path

from mailroom.campaigns import segment_views as sv
from mailroom.campaigns import views
from mailroom.campaigns.deliverability_views import deliverability_page

app_name = "campaigns"

urlpatterns = [
    path("lists/<int:list_id>/import/", views.import_upload, name="import_upload"),
    path("lists/<int:list_id>/export.csv", views.export_csv, name="export_csv"),
    path("imports/<int:job_id>/", views.import_job, name="import_job"),
    path("imports/<int:job_id>/map/", views.import_map, name="import_map"),
    path("imports/<int:job_id>/progress/", views.import_progress, name="import_progress"),
    path("imports/<int:job_id>/retry/", views.import_retry, name="import_retry"),
    path("imports/<int:job_id>/bad-rows.csv", views.bad_rows_csv, name="bad_rows_csv"),
    path("segments/new/", sv.segment_new, name="segment_new"),
    path("segments/<int:segment_id>/", sv.segment_edit, name="segment_edit"),
    path("segments/row/", sv.segment_row, name="segment_row"),
    path("segments/count/", sv.segment_count, name="segment_count"),
    path("deliverability/", deliverability_page, name="deliverability"),
]
