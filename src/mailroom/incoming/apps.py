from django.apps import AppConfig


class IncomingConfig(AppConfig):
    name = "mailroom.incoming"
    label = "incoming"
    verbose_name = "Incoming mail"
