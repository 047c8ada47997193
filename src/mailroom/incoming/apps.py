from django.apps import AppConfig


class IncomingConfig(AppConfig):
    name = "mailroom.incoming"
    label = "incoming"
    verbose_name = "Incoming mail"

    def ready(self) -> None:
        # the router imports models: only once the app registry is ready
        from mailroom.incoming.router import dry_run
        from mailroom.routing.testing import register_alias_tester

        register_alias_tester(dry_run)  # routing's "Test" action routes through it
