from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "mailroom.campaigns"
    label = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from mailroom.campaigns import admin_nav, send_checks

        admin_nav.register()
        send_checks.register()  # the sender drops a campaign mail whose recipient left
        from mailroom.campaigns import engine

        engine.register()  # the `campaigns` worker step and the `campaigns.sent` hook
        from mailroom.campaigns import reputation

        reputation.register()  # bounces and complaints reach traces; the reputation guard
        from mailroom.campaigns import replies

        replies.register()  # a reply on the campaign's chatter counts for its recipient
        from mailroom.campaigns import mail_unsubscribe

        mail_unsubscribe.register()  # unsubscribe+<token>@: the mailto List-Unsubscribe
