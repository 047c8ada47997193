from django.apps import AppConfig

from mailroom.chatter.inbox import InboxSource, register_inbox_source


class ActivitiesConfig(AppConfig):
    name = "mailroom.activities"
    label = "activities"
    verbose_name = "Activities"

    def ready(self) -> None:
        # these import models (ContentType, Activity): they need the app registry
        from django.db.models.signals import post_delete

        from mailroom.activities import inbox, signals
        from mailroom.chatter.panels import register_panel

        register_panel("activities", "activities:panel", position=10)
        register_inbox_source(InboxSource(key="activities", label="Activities",
                                          count=inbox.count_for_user,
                                          items=inbox.items_for_user, position=20))
        post_delete.connect(signals.drop_activities_of_deleted_record,
                            dispatch_uid="activities-drop-with-record")
