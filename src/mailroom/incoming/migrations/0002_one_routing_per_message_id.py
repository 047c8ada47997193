"""A Message-ID is routed once per company (InboundMail.Meta.constraints).

Before the constraint, two routers could each route a copy of one message at the same moment.
Where that happened, the later copies are marked duplicates of the first before the
constraint is added, with a line in their trace that says so; the records they made stay.
"""

from django.db import migrations, models
from django.db.models import Count

NOTE = ("Marked a duplicate of message #{first} when Mailroom began routing a Message-ID once "
        "per company: both copies had been routed at the same moment by two routers.")


def retire_copies(apps, schema_editor):
    InboundMail = apps.get_model("incoming", "InboundMail")
    routed = (InboundMail.objects.filter(state="done").exclude(message_id="")
              .exclude(decision__in=["duplicate", "refused"]))
    twice = (routed.values("company_id", "message_id").annotate(n=Count("id"))
             .filter(n__gt=1))
    for group in twice.iterator():
        first, *later = routed.filter(company_id=group["company_id"],
                                      message_id=group["message_id"]).order_by("received_at",
                                                                               "id")
        for copy in later:
            trace = list(copy.trace or []) + [
                {"rule": "duplicate", "note": NOTE.format(first=first.pk)}]
            InboundMail.objects.filter(pk=copy.pk).update(decision="duplicate", trace=trace)


class Migration(migrations.Migration):

    dependencies = [
        ('incoming', '0001_initial'),
    ]

    operations = [
        migrations.RunPython(retire_copies, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='inboundmail',
            constraint=models.UniqueConstraint(condition=models.Q(('state', 'done'), models.Q(('message_id', ''), _negated=True), models.Q(('decision__in', ['duplicate', 'refused']), _negated=True)), fields=('company', 'message_id'), name='incoming_one_routing_per_message_id'),
        ),
    ]
