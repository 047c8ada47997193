"""The WSGI application, for a WSGI server of your choice (gunicorn, uWSGI, mod_wsgi);
`mailroom web` serves the same with waitress.

Like every serving process, it refuses to load on PostgreSQL without the installation's keys
(core.keyring: the message names the variables), and on SQLite every commit it makes is
flushed to disk (core.durability): what a page says is saved survives a power loss."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailroom.settings")
application = get_wsgi_application()

from django.core.exceptions import ImproperlyConfigured  # noqa: E402 - after setup

from mailroom.core.durability import acknowledge_every_commit  # noqa: E402
from mailroom.core.keyring import KeyringError, require_installation_keys  # noqa: E402

try:
    require_installation_keys()
except KeyringError as exc:  # the WSGI server fails to load the app, with the reason
    raise ImproperlyConfigured(str(exc)) from None
acknowledge_every_commit()
