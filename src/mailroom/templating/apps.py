from django.apps import AppConfig


class TemplatingConfig(AppConfig):
    name = "mailroom.templating"
    label = "templating"
    verbose_name = "Email templates"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from mailroom.templating import actions
        actions.register_builtin_hooks()
        post_migrate.connect(_install_defaults, sender=self)


def _install_defaults(sender, **kwargs) -> None:
    from mailroom.templating.defaults import install_default_templates

    install_default_templates()
