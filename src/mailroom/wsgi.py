import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailroom.settings")
application = get_wsgi_application()

# people are told "saved" here: on SQLite every commit survives a power loss (core.durability)
from mailroom.core.durability import acknowledge_every_commit  # noqa: E402 - after setup

acknowledge_every_commit()
