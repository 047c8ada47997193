from django.apps import AppConfig

from mailroom.core import lookups, roles


class CoreConfig(AppConfig):
    name = "mailroom.core"
    label = "core"
    verbose_name = "Settings"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        # ready(): cron imports the models, which cannot load before the app registry
        from mailroom.core import cron, keyring

        lookups.register()  # hostile ids in `__in` and foreign-key filters match nothing
        post_migrate.connect(roles.sync_role_groups, dispatch_uid="mailroom.sync_role_groups")
        post_migrate.connect(cron.ensure_default_jobs, sender=self,
                             dispatch_uid="mailroom.ensure_default_jobs")
        # a fresh PostgreSQL database learns the installation's keys (fingerprints only)
        post_migrate.connect(keyring.record_at_migrate, sender=self,
                             dispatch_uid="mailroom.record_key_fingerprints")
