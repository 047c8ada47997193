"""Django settings, all derived from `mailroom.config` (environment and `.env`)."""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.templatetags.static import static
from django.urls import reverse_lazy

from mailroom import config as _config

CONFIG = _config.load()

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = CONFIG.data_dir
ATTACHMENT_DIR = DATA_DIR / "attachments"
BASE_URL = CONFIG.base_url
# generated in the data dir unless given; on PostgreSQL every node must be given the same
# MAILROOM_SECRET_KEY and MAILROOM_FERNET_KEYS or it refuses to start (core.keyring)
SECRET_KEY = CONFIG.secret_key
FERNET_KEYS = CONFIG.fernet_keys
DEBUG = CONFIG.debug
ALLOWED_HOSTS = CONFIG.allowed_hosts
CSRF_TRUSTED_ORIGINS = [BASE_URL]

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_countries",
    "axes",  # login throttling: mailroom.core.throttle
    "tinymce",  # only for its bundled TinyMCE 7.8 (GPL-2.0+), served by whitenoise
    "mailroom.core",
    "mailroom.contacts",
    "mailroom.chatter",
    "mailroom.outgoing",
    "mailroom.business.crm",
    "mailroom.business.helpdesk",
    "mailroom.business.recruitment",
    "mailroom.business.projects",
    "mailroom.business.sales",
    "mailroom.business.invoicing",
    "mailroom.documents",
    "mailroom.templating",
    "mailroom.automation",
    "mailroom.activities",
    "mailroom.digests",
    "mailroom.letters",
    "mailroom.campaigns",
    "mailroom.routing",
    "mailroom.incoming",
    "mailroom.api",
    "mailroom.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "mailroom.api.middleware.ApiJsonErrors",  # every error under /api/ answers JSON
    "mailroom.core.middleware.RefuseNulBytes",  # a 400, not PostgreSQL's 500
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "mailroom.core.middleware.TouchLastSeen",  # digests slow down only for absent readers
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into its page
]

ROOT_URLCONF = "mailroom.urls"
WSGI_APPLICATION = "mailroom.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]


def _database(url: str) -> dict:
    db = dj_database_url.parse(url)
    if db["ENGINE"] == "django.db.backends.sqlite3":
        if db["NAME"] and db["NAME"] != ":memory:" and not str(db["NAME"]).startswith("file:"):
            _config.private_sqlite_file(Path(db["NAME"]))  # 0600, like the keys beside it
        # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at
        # BEGIN so two workers never deadlock upgrading a read lock.
        db["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
            ),
        }
    else:
        db["CONN_MAX_AGE"] = 60
        db["CONN_HEALTH_CHECKS"] = True
        # Parameters are sent apart from the statement, and a statement run 5 times on a
        # connection is prepared there (psycopg's prepare_threshold; Django turns it off by
        # default): PostgreSQL then skips parsing and planning it. Measured on inbound
        # routing (./scripts/bench inbound_pg_options, four runs): the database backend
        # 8-23% less CPU, the router about the same; the shared database is what several
        # nodes wait on. Behind PgBouncer in transaction mode before 1.21 (no
        # max_prepared_statements), add ?server_side_binding=false to MAILROOM_DATABASE_URL:
        # nothing is then prepared.
        options = db.setdefault("OPTIONS", {})
        options.setdefault("server_side_binding", True)
        if options["server_side_binding"]:
            options.setdefault("prepare_threshold", 5)
    return db


DATABASES = {"default": _database(CONFIG.database_url)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "core.User"
LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "/"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "mailroom.core.throttle.LoginThrottle",
    "django.contrib.auth.backends.ModelBackend",
]
# django-axes: failures per account and per client address (REMOTE_ADDR; behind a proxy set
# MAILROOM_TRUSTED_PROXY_HEADER, e.g. HTTP_X_FORWARDED_FOR, that the proxy always overwrites)
AXES_FAILURE_LIMIT = int(os.environ.get("MAILROOM_LOGIN_FAILURE_LIMIT") or 5)
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("MAILROOM_LOGIN_LOCKOUT_MINUTES") or 15))
AXES_LOCKOUT_PARAMETERS = "mailroom.core.throttle.lockout_parameters"
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # a lockout ends when it said it would
AXES_LOCKOUT_CALLABLE = "mailroom.core.throttle.lockout_response"
AXES_ENABLE_ADMIN = False  # core.admin shows locked logins with an Unlock action
AXES_CLIENT_IP_CALLABLE = "mailroom.core.throttle.client_ip"
AXES_VERBOSE = False
# Test connection reaches any host:port: at most this many runs per user in this many minutes
MAILROOM_CONNECTION_TEST_LIMIT = int(os.environ.get("MAILROOM_CONNECTION_TEST_LIMIT") or 10)
MAILROOM_CONNECTION_TEST_MINUTES = int(os.environ.get("MAILROOM_CONNECTION_TEST_MINUTES") or 10)
MAILROOM_TRUSTED_PROXY_HEADER = os.environ.get("MAILROOM_TRUSTED_PROXY_HEADER", "")

LANGUAGE_CODE = "en-us"
TIME_ZONE = CONFIG.time_zone
USE_I18N = True
USE_TZ = True
# one date format everywhere ("6 Dec 2026, 14:05", like the chatter): lists, detail pages and
# templates' |date:"DATETIME_FORMAT" read mailroom/formats/en/formats.py, which wins over
# Django's locale formats (settings.DATE_FORMAT alone would not)
FORMAT_MODULE_PATH = ["mailroom.formats"]

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "/media/"
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 30 * 1024 * 1024
MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "SAMEORIGIN"
if BASE_URL.startswith("https://"):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    # an ordinary 403 is one line in the log, not a traceback (core.log_filters)
    "filters": {"one_line_403": {"()": "mailroom.core.log_filters.PermissionDeniedOneLine"}},
    "root": {"handlers": ["console"], "level": CONFIG.log_level},
    # axes logs every failed sign-in at INFO; lockouts (WARNING) are what an operator needs
    # WeasyPrint logs every render step at INFO: one line per PDF step is noise in a worker
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"},
                "weasyprint": {"level": "WARNING"},
                # libarchive-c says at import that Debian's libarchive lacks a feature we
                # do not use (writing entry digests)
                "libarchive": {"level": "WARNING"},
                # one INFO line per provider request otherwise; failures are logged by us
                "httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"},
                "django.request": {"filters": ["one_line_403"]}},
}

NINJA_PAGINATION_PER_PAGE = 50

# how long a deferred mail is retried before it fails (seconds; default 4 days, like MTAs)
MAILROOM_RETRY_LIFETIME = int(os.environ.get("MAILROOM_RETRY_LIFETIME") or 4 * 24 * 3600)

# receiving: the largest message taken (bytes), and the SMTP/LMTP gateway (`mailroom gateway`,
# started by `mailroom run`). Listeners are HOST:PORT or unix:/path; empty turns one off.
MAILROOM_INBOUND_MAX_BYTES = int(os.environ.get("MAILROOM_INBOUND_MAX_BYTES") or 50 * 1024 * 1024)
MAILROOM_GATEWAY_SMTP = os.environ.get("MAILROOM_GATEWAY_SMTP", "127.0.0.1:2525")
MAILROOM_GATEWAY_LMTP = os.environ.get("MAILROOM_GATEWAY_LMTP", "127.0.0.1:2424")
MAILROOM_GATEWAY_TLS_CERT = os.environ.get("MAILROOM_GATEWAY_TLS_CERT", "")  # STARTTLS when set
MAILROOM_GATEWAY_TLS_KEY = os.environ.get("MAILROOM_GATEWAY_TLS_KEY", "")
MAILROOM_GATEWAY_HOSTNAME = os.environ.get("MAILROOM_GATEWAY_HOSTNAME", "")  # default: the FQDN
MAILROOM_GATEWAY_DB_THREADS = int(os.environ.get("MAILROOM_GATEWAY_DB_THREADS") or 0)  # 0: auto
# on a SQLite file the gateway stores what it accepts in an intake spool of its own
# (DATA_DIR/intake.sqlite3) that the router moves into the database, so accepting never waits
# on routing's write lock (incoming.intake): auto (SQLite file), on, off
MAILROOM_INTAKE_SPOOL = os.environ.get("MAILROOM_INTAKE_SPOOL", "auto")
# gateway hygiene (0 turns a limit off): over a connection cap the client gets 421 and is
# closed; after N messages on one connection the next MAIL gets 421 (reconnect); a client
# silent for the idle timeout (seconds) gets 421 and is closed
MAILROOM_GATEWAY_MAX_CONNECTIONS = int(os.environ.get("MAILROOM_GATEWAY_MAX_CONNECTIONS") or 500)
MAILROOM_GATEWAY_MAX_CONNECTIONS_PER_IP = int(
    os.environ.get("MAILROOM_GATEWAY_MAX_CONNECTIONS_PER_IP") or 50)
MAILROOM_GATEWAY_MAX_MESSAGES_PER_CONNECTION = int(
    os.environ.get("MAILROOM_GATEWAY_MAX_MESSAGES_PER_CONNECTION") or 1000)
MAILROOM_GATEWAY_IDLE_TIMEOUT = float(os.environ.get("MAILROOM_GATEWAY_IDLE_TIMEOUT") or 300)
# `mailroom worker` runs at this CPU niceness (0 leaves it as started): on a busy machine the
# gateway and the web keep answering while workers catch up (a worker alone on its machine
# loses nothing)
MAILROOM_WORKER_NICE = int(os.environ.get("MAILROOM_WORKER_NICE") or 10)
# the demo mail catcher (`mailroom catcher`, started by `mailroom run`): HOST:PORT on loopback;
# on by default only for the embedded default (no database URL given), empty turns it off
MAILROOM_MAIL_CATCHER = os.environ.get(
    "MAILROOM_MAIL_CATCHER",
    "" if os.environ.get("MAILROOM_DATABASE_URL") or os.environ.get("DATABASE_URL")
    else "127.0.0.1:2526")

# routing received mail (incoming.router): sender authentication asks DNS (HOST[:PORT],
# comma-separated; empty = the system resolver); a sender may send MAILROOM_FLOOD_LIMIT
# messages per MAILROOM_FLOOD_MINUTES before the rest is dropped (allowed senders excepted);
# addresses are blacklisted after this many hard bounces, or soft bounces within 30 days.
MAILROOM_DNS_SERVERS = os.environ.get("MAILROOM_DNS_SERVERS", "")
MAILROOM_DNS_TIMEOUT = float(os.environ.get("MAILROOM_DNS_TIMEOUT") or 3.0)
# campaigns start only from a domain whose SPF, DKIM and DMARC pass (or with a reason given);
# "false" for an install with no DNS at all (then every campaign would need a reason)
MAILROOM_CAMPAIGN_DNS_CHECK = os.environ.get("MAILROOM_CAMPAIGN_DNS_CHECK", "true") != "false"
MAILROOM_TRUSTED_AUTHSERV_IDS = [
    s.strip() for s in os.environ.get("MAILROOM_TRUSTED_AUTHSERV_IDS", "").split(",") if s.strip()]
MAILROOM_FLOOD_LIMIT = int(os.environ.get("MAILROOM_FLOOD_LIMIT") or 20)
MAILROOM_FLOOD_MINUTES = int(os.environ.get("MAILROOM_FLOOD_MINUTES") or 120)
MAILROOM_HARD_BOUNCE_BLACKLIST = int(os.environ.get("MAILROOM_HARD_BOUNCE_BLACKLIST") or 2)
MAILROOM_SOFT_BOUNCE_BLACKLIST = int(os.environ.get("MAILROOM_SOFT_BOUNCE_BLACKLIST") or 5)
MAILROOM_SUBJECT_THREADING_DAYS = int(os.environ.get("MAILROOM_SUBJECT_THREADING_DAYS") or 30)
MAILROOM_INBOUND_MAX_PARTS = int(os.environ.get("MAILROOM_INBOUND_MAX_PARTS") or 1000)
MAILROOM_INBOUND_MAX_SECONDS = float(os.environ.get("MAILROOM_INBOUND_MAX_SECONDS") or 20.0)
MAILROOM_INBOX_POLL_SECONDS = int(os.environ.get("MAILROOM_INBOX_POLL_SECONDS") or 20)

UNFOLD = {
    "SITE_TITLE": "Mailroom",
    "SITE_HEADER": "Mailroom",
    "SITE_SYMBOL": "mail",
    "SITE_FAVICONS": [{"rel": "icon", "type": "image/svg+xml",
                       "href": lambda request: static("mailroom/favicon.svg")}],
    "SHOW_HISTORY": False,
    "SHOW_VIEW_ON_SITE": False,
    "ENVIRONMENT": None,
    "SITE_DROPDOWN": "mailroom.core.navigation.company_dropdown",
    "DASHBOARD_CALLBACK": "mailroom.chatter.dashboard.callback",
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": False,
        "navigation": "mailroom.core.navigation.sidebar",
    },
    "COLORS": {},
    "ACCOUNT": {"navigation": [
        {"title": "My preferences", "link": reverse_lazy("core:preferences")},
        {"title": "My inbox", "link": reverse_lazy("chatter:inbox")},
        {"title": "Change password", "link": reverse_lazy("admin:password_change")},
    ]},
}
UNFOLD_LOGIN_URL = reverse_lazy("admin:login")
