"""The digests back office: digests, tips and custom KPIs, one module each."""

from mailroom.digests import admin_digests, admin_kpis, admin_tips  # noqa: F401 (register)
