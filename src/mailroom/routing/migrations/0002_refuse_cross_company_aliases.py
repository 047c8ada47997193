"""Aliases saved before defaults were checked against their company (issue 10) may preset a
record's company or point at another company's users and records. They are refused, not
rewritten: deactivated and marked invalid with the reason, reported here and in the audit log,
so an administrator sees exactly what was stored and decides what it should be."""

from django.db import migrations


def refuse_unsafe(apps, schema_editor):
    from mailroom.routing.defaults import alias_problems

    Alias = apps.get_model("routing", "Alias")
    AuditLog = apps.get_model("core", "AuditLog")
    for alias in Alias.objects.filter(active=True).select_related("domain"):
        reasons = alias_problems(alias, company_only=True)
        if not reasons:
            continue
        name = f"{alias.local_part}@{alias.domain.name}"
        text = "Refused: its settings reach another company — " + "; ".join(reasons)
        Alias.objects.filter(pk=alias.pk).update(active=False, status="invalid",
                                                 last_error=text[:2000])
        AuditLog.objects.create(
            actor_name="system", company_id=alias.company_id, action="routing.alias.refused",
            object_type="routing.Alias", object_id=str(alias.pk), object_repr=name[:200],
            before={"defaults": alias.defaults, "active": alias.active},
            after={"active": False, "reason": text[:2000]})
        print(f"\n  routing: alias {name} (company {alias.company_id}) deactivated: {text}")


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0001_initial"),
        ("core", "0001_initial"),
    ]

    operations = [migrations.RunPython(refuse_unsafe, migrations.RunPython.noop)]
