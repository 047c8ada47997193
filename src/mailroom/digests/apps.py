from django.apps import AppConfig


class DigestsConfig(AppConfig):
    name = "mailroom.digests"
    label = "digests"
    verbose_name = "Digests"

    def ready(self) -> None:
        # these import models (custom KPIs are rows; the views name Digest): they need the
        # app registry
        from mailroom.chatter.inbox import InboxSource, register_inbox_source
        from mailroom.core import kpis
        from mailroom.digests import custom_kpis, prefs, tip_inbox, tip_views, views

        kpis.register_source(custom_kpis.for_company)
        views.register_navigation()
        tip_views.register_navigation()
        prefs.register_preferences()
        register_inbox_source(InboxSource(key="tips", label="Tips", count=tip_inbox.count_for_user,
                                          items=tip_inbox.items_for_user, mark=tip_inbox.mark,
                                          position=60))
