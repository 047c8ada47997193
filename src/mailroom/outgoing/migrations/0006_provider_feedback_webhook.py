"""The provider feedback webhook of an outgoing server (outgoing/feedback): its kind, its
encrypted verification key, the unguessable token in its address (one per existing server,
generated here), and the events received, kept for idempotency."""

import secrets

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import mailroom.core.secrets
import mailroom.outgoing.models


def give_tokens(apps, schema_editor):
    MailServer = apps.get_model("outgoing", "MailServer")
    for server in MailServer.objects.filter(feedback_token__isnull=True).only("pk"):
        MailServer.objects.filter(pk=server.pk).update(feedback_token=secrets.token_urlsafe(24))


class Migration(migrations.Migration):

    dependencies = [
        ("outgoing", "0005_one_connection_status"),
    ]

    operations = [
        migrations.AddField(
            model_name="mailserver",
            name="feedback_kind",
            field=models.CharField(
                choices=[("none", "None"), ("ses", "Amazon SES via SNS"),
                         ("sendgrid", "SendGrid event webhook"), ("mailgun", "Mailgun webhook")],
                default="none",
                help_text="When this server is a provider's relay: the provider posts spam "
                          "complaints and bounces to the webhook address shown below.",
                max_length=10, verbose_name="provider feedback webhook"),
        ),
        migrations.AddField(
            model_name="mailserver",
            name="feedback_secret",
            field=mailroom.core.secrets.EncryptedTextField(
                blank=True, verbose_name="webhook verification key"),
        ),
        migrations.AddField(
            model_name="mailserver",
            name="feedback_token",
            field=models.CharField(max_length=64, null=True, editable=False),
        ),
        migrations.RunPython(give_tokens, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="mailserver",
            name="feedback_token",
            field=models.CharField(default=mailroom.outgoing.models.new_feedback_token,
                                   editable=False, max_length=64, unique=True),
        ),
        migrations.CreateModel(
            name="FeedbackEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                           serialize=False, verbose_name="ID")),
                ("key", models.CharField(help_text="The provider's event id and recipient.",
                                         max_length=255)),
                ("outcome", models.CharField(
                    choices=[("complaint", "Spam complaint recorded"),
                             ("bounce", "Bounce recorded"), ("ignored", "Ignored"),
                             ("unmatched", "No such mail")], max_length=10)),
                ("address", models.CharField(blank=True, max_length=320)),
                ("note", models.TextField(blank=True)),
                ("received_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("mail", models.ForeignKey(
                    blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                    related_name="+", to="outgoing.outgoingmail")),
                ("server", models.ForeignKey(
                    on_delete=django.db.models.deletion.CASCADE, related_name="+",
                    to="outgoing.mailserver")),
            ],
            options={
                "ordering": ["-received_at", "-id"],
                "constraints": [models.UniqueConstraint(fields=("server", "key"),
                                                        name="feedbackevent_unique_key")],
            },
        ),
    ]
