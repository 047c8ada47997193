from django.apps import AppConfig

from mailroom.routing.testing import register_alias_tester


class IncomingConfig(AppConfig):
    name = "mailroom.incoming"
    label = "incoming"
    verbose_name = "Incoming mail"

    def ready(self) -> None:
        # ready(): the router imports models, which cannot load before the app registry
        from mailroom.incoming.kpis import register_kpis
        from mailroom.incoming.router import dry_run

        register_alias_tester(dry_run)  # routing's "Test" action routes through it
        register_kpis()
