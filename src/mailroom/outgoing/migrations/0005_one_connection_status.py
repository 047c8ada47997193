"""One status vocabulary for incoming and outgoing servers (core.mail_servers.ConnectionStatus):
the outgoing server's last-test words "untested"/"failed" become "not_tested"/"failing", as
incoming servers already said. Only the stored words change; the column stays as it was."""

from django.db import migrations, models

OLD_TO_NEW = {"untested": "not_tested", "failed": "failing"}


def to_shared_words(apps, schema_editor):
    MailServer = apps.get_model("outgoing", "MailServer")
    for old, new in OLD_TO_NEW.items():
        MailServer.objects.filter(test_status=old).update(test_status=new)


def to_old_words(apps, schema_editor):
    MailServer = apps.get_model("outgoing", "MailServer")
    for old, new in OLD_TO_NEW.items():
        MailServer.objects.filter(test_status=new).update(test_status=old)


class Migration(migrations.Migration):

    dependencies = [
        ("outgoing", "0004_alter_outgoingmail_failure_type_and_more"),
    ]

    operations = [
        migrations.AlterField(
            model_name="mailserver",
            name="test_status",
            field=models.CharField(
                choices=[("not_tested", "Not tested"), ("ok", "Working"),
                         ("failing", "Failing")],
                default="not_tested", max_length=10),
        ),
        migrations.RunPython(to_shared_words, to_old_words),
    ]
