"""The predefined templates and the demo data pass the placeholder check and render for every
record, with strict undefined: no template the product ships fails or prints an empty field."""

from __future__ import annotations

import io
import socket

import pytest
from django.core.management import call_command

from mailroom.core import record_types
from mailroom.templating import services
from mailroom.templating.defaults import DEFAULTS
from mailroom.templating.models import EmailTemplate
from mailroom.templating.rendering import render_template


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def demo(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MAILROOM_MAIL_CATCHER = f"127.0.0.1:{free_port()}"
    call_command("demo", stdout=io.StringIO())


def test_the_predefined_templates_pass_the_placeholder_check(db):
    stored = EmailTemplate.objects.filter(company__isnull=True,
                                          name__in=[spec["name"] for spec in DEFAULTS])
    assert stored.count() == len(DEFAULTS)
    for template in stored:
        services.validate_sources(template, template.translations.all(), simple_only=False)


def test_every_template_renders_for_the_demo_records(demo):
    from mailroom.core.models import User

    rendered: dict[str, int] = {}
    templates = EmailTemplate.objects.filter(active=True)
    for template in EmailTemplate.objects.filter(active=True):
        model = record_types.get(template.record_type).model
        for record in model.objects.order_by("pk")[:8]:
            user = User.objects.filter(companies=record.company).order_by("pk").first()
            langs = [None, *(t.lang for t in template.translations.all())]
            for lang in langs:  # the customer's language, and each translation
                mail = render_template(template, record, user=user, lang=lang,
                                       with_attachments=False)
                assert mail.subject.strip(), (template.name, record.pk, lang)
                assert "None" not in mail.subject
                rendered[template.name] = rendered.get(template.name, 0) + 1
    assert set(rendered) == {t.name for t in templates}
    assert min(rendered.values()) >= 8  # each on several demo records
