from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    name = "mailroom.apps.invoicing"
    label = "invoicing"
