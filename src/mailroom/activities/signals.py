"""A record's activities go when the record goes (the chatter's own rows go through the
record's GenericRelations, which the chatter cannot declare for an upper floor)."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType

from mailroom.activities.models import Activity
from mailroom.chatter.models import MailThread


def drop_activities_of_deleted_record(sender, instance, **kwargs) -> None:
    if not isinstance(instance, MailThread):
        return
    content_type = ContentType.objects.get_for_model(instance, for_concrete_model=True)
    Activity.objects.filter(content_type=content_type, object_id=instance.pk).delete()
