"""The peer: django-post-office sending the same queued mails to the same sink.

Runs in its own process with its own minimal Django settings:
python -m bench.post_office_peer SINK_PORT COUNT DB_URL BATCH
Prints one JSON line: {"sent": n, "seconds": s, "rate": r, "peak_rss_mb": m}.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from email.utils import formataddr


def configure(port: int, db_url: str, batch: int) -> None:
    import dj_database_url
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "post_office"],
        DATABASES={"default": dj_database_url.parse(db_url)},
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1", EMAIL_PORT=port, EMAIL_USE_TLS=False,
        USE_TZ=True, DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        POST_OFFICE={"BATCH_SIZE": batch, "DEFAULT_PRIORITY": "medium",
                     "LOG_LEVEL": 0, "THREADS_PER_PROCESS": 1, "LOCK_FILE_NAME": os.path.join(
                         tempfile.gettempdir(), f"post_office_{port}")},
        LOGGING_CONFIG=None,
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates",
                    "APP_DIRS": True}],
    )
    import django

    django.setup()


def main() -> None:
    port, count, db_url, batch = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    configure(port, db_url, batch)
    from django.core.management import call_command
    from post_office import mail
    from post_office.models import STATUS, Email

    call_command("migrate", verbosity=0)
    from bench.common import personalized

    kwargs = []
    for n in range(count):
        subject, html, text, to = personalized(n)
        kwargs.append(dict(sender="Acme Billing <billing@acme.example>",
                           recipients=[formataddr(to)],
                           subject=subject, message=text, html_message=html,
                           priority="medium", commit=False))
    emails = [mail.send(**k) for k in kwargs]
    Email.objects.bulk_create(emails, batch_size=1000)
    started = time.monotonic()
    call_command("send_queued_mail", processes=1)
    seconds = time.monotonic() - started
    sent = Email.objects.filter(status=STATUS.sent).count()
    import resource

    print(json.dumps({"sent": sent, "seconds": seconds, "rate": sent / seconds,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
