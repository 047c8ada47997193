from django.apps import AppConfig

from mailroom.chatter.inbox import register_inbox_source


class OutgoingConfig(AppConfig):
    name = "mailroom.outgoing"
    label = "outgoing"
    verbose_name = "Outgoing mail"

    def ready(self) -> None:
        # ready(): the inbox source and the Home page's email state query models, which
        # cannot load before the app registry
        from mailroom.outgoing import home, inbox
        from mailroom.outgoing.kpis import register_kpis

        register_inbox_source(inbox.SOURCE)
        home.register()
        register_kpis()
