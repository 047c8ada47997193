"""A contact can stand for an office user of its company (Partner.user), so users follow
records and get notifications. Existing contacts whose address is a company user's address
are linked to that user (the oldest such contact per company and user)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def link_users(apps, schema_editor):
    Partner = apps.get_model("contacts", "Partner")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    for user in User.objects.exclude(email="").prefetch_related("companies"):
        for company in user.companies.all():
            partner = (Partner.objects.filter(company=company, email__iexact=user.email,
                                              user__isnull=True).order_by("pk").first())
            if partner is not None and not Partner.objects.filter(company=company,
                                                                  user=user).exists():
                Partner.objects.filter(pk=partner.pk).update(user=user)


class Migration(migrations.Migration):

    dependencies = [
        ('contacts', '0002_initial'),
        ('core', '0003_notify_by'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='partner',
            name='user',
            field=models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='partners', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddConstraint(
            model_name='partner',
            constraint=models.UniqueConstraint(condition=models.Q(('user__isnull', False)), fields=('company', 'user'), name='partner_one_per_user'),
        ),
        migrations.RunPython(link_users, migrations.RunPython.noop),
    ]
