from django.apps import AppConfig


class TemplatingConfig(AppConfig):
    name = "mailroom.templating"
    label = "templating"
    verbose_name = "Email templates"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        # ready(): models cannot load before the app registry
        from mailroom.chatter.admin_base import register_record_list_action
        from mailroom.chatter.notifiers import register_notifier
        from mailroom.templating import actions
        from mailroom.templating.follower_mail import email_followers
        from mailroom.templating.views import mass_page

        actions.register_builtin_hooks()
        # "Send email…" on every record list: one templated mail per selected record
        register_record_list_action("send_email", lambda admin, request, queryset:
                                    mass_page(request, queryset), "Send email…")
        # a message on a record emails its followers (chatter decides who, we send)
        register_notifier("follower_email", email_followers)
        post_migrate.connect(_install_defaults, sender=self)


def _install_defaults(sender, **kwargs) -> None:
    # local: apps.py loads before the models, which the defaults import
    from mailroom.templating.defaults import install_default_templates

    install_default_templates()
