from django.urls import path

from mailroom.chatter import inbox_views, views

app_name = "chatter"

_record = "<int:content_type_id>/<int:object_id>/"
urlpatterns = [
    path(_record, views.panel, name="panel"),
    path(f"{_record}timeline/", views.timeline, name="timeline"),
    path(f"{_record}post/", views.post, name="post"),
    path(f"{_record}attachments/", views.upload, name="upload"),
    path(f"{_record}followers/", views.follow, name="follow"),
    path(f"{_record}followers/remove/", views.unfollow, name="unfollow"),
    path(f"{_record}followers/candidates/", views.partners, name="partners"),
    path("attachments/<int:attachment_id>/download/", views.download, name="download"),
    path("messages/<int:message_id>/body/", views.message_body, name="message_body"),
    path("inbox/", inbox_views.inbox, name="inbox"),
    path("inbox/bell/", inbox_views.bell, name="inbox_bell"),
    path("inbox/mark/", inbox_views.mark, name="inbox_mark"),
]
