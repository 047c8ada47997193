"""The tips Mailroom ships (digests.predefined_tips), created by key; reversing deletes them."""

from django.db import migrations


def install(apps, schema_editor):
    from mailroom.digests import predefined_tips

    predefined_tips.install(apps.get_model("digests", "Tip"),
                            apps.get_model("digests", "TipTranslation"))


def uninstall(apps, schema_editor):
    from mailroom.digests import predefined_tips

    predefined_tips.uninstall(apps.get_model("digests", "Tip"))


class Migration(migrations.Migration):
    dependencies = [("digests", "0001_initial")]

    operations = [migrations.RunPython(install, uninstall)]
