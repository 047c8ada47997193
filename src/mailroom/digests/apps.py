from django.apps import AppConfig


class DigestsConfig(AppConfig):
    name = "mailroom.digests"
    label = "digests"
    verbose_name = "Digests"

    def ready(self) -> None:
        # the custom KPIs are rows: their source queries models, so it needs the app registry
        from mailroom.core import kpis
        from mailroom.digests import custom_kpis

        kpis.register_source(custom_kpis.for_company)
