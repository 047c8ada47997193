"""/campaigns/…: pages beyond the admin."""

from django.urls import path

from mailroom.campaigns import campaign_views as cv
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
    path("c/audience/", cv.audience, name="campaign_audience"),
    path("c/<int:campaign_id>/", cv.campaign_page, name="campaign"),
    path("c/<int:campaign_id>/progress/", cv.campaign_progress, name="campaign_progress"),
    path("c/<int:campaign_id>/send/", cv.send_now, name="campaign_send"),
    path("c/<int:campaign_id>/schedule/", cv.schedule, name="campaign_schedule"),
    path("c/<int:campaign_id>/unschedule/", cv.unschedule, name="campaign_unschedule"),
    path("c/<int:campaign_id>/pause/", cv.pause, name="campaign_pause"),
    path("c/<int:campaign_id>/resume/", cv.resume, name="campaign_resume"),
    path("c/<int:campaign_id>/cancel/", cv.cancel, name="campaign_cancel"),
    path("c/<int:campaign_id>/duplicate/", cv.duplicate, name="campaign_duplicate"),
    path("c/<int:campaign_id>/test/", cv.test_send, name="campaign_test"),
    path("c/<int:campaign_id>/recipients.csv", cv.recipients_csv,
         name="campaign_recipients_csv"),
    path("segments/new/", sv.segment_new, name="segment_new"),
    path("segments/<int:segment_id>/", sv.segment_edit, name="segment_edit"),
    path("segments/row/", sv.segment_row, name="segment_row"),
    path("segments/count/", sv.segment_count, name="segment_count"),
    path("deliverability/", deliverability_page, name="deliverability"),
]
