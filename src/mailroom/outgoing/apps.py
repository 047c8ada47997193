from django.apps import AppConfig


class OutgoingConfig(AppConfig):
    name = "mailroom.outgoing"
    label = "outgoing"
    verbose_name = "Outgoing mail"
