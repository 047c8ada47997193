from django.apps import AppConfig

from mailroom.chatter.inbox import register_inbox_source


class ChatterConfig(AppConfig):
    name = "mailroom.chatter"
    label = "chatter"
    verbose_name = "Discuss"

    def ready(self) -> None:
        # ready(): the source queries models, which cannot load before the app registry
        from mailroom.chatter import notification_inbox
        from mailroom.chatter.kpis import register_kpis

        register_inbox_source(notification_inbox.SOURCE)
        register_kpis()
