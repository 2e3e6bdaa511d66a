"""Settings, all read from the environment by one django-environ reader.

Every default runs on a laptop: an SQLite file, console email, tasks run
in-process right after commit (no broker). Production sets the variables
listed in README.md.
"""

import base64
import hashlib
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-secret-key-change-me-in-production")
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
# Payout details are encrypted at rest (commissions.encrypted, django-fernet-encrypted-fields):
# each key is PBKDF2(SECRET_KEY or a fallback, salt) for each salt here; the first salt
# encrypts, all of them decrypt (rotation: docs/deployment.md). Unset: one salt derived from
# each secret key, so `make run` and the tests need nothing and a real SECRET_KEY makes it real.
SALT_KEY = env.list("FIELD_ENCRYPTION_SALTS", default=[]) or [
    hashlib.sha256(f"payout-details:{key}".encode()).hexdigest()
    for key in [SECRET_KEY, *SECRET_KEY_FALLBACKS]
]
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Hosts a partner link may send visitors to with `to=` (SPEC §3).
ALLOWED_REDIRECT_HOSTS = env.list("ALLOWED_REDIRECT_HOSTS", default=[])
REFERRAL_COOKIE_DOMAIN = env.str("REFERRAL_COOKIE_DOMAIN", default="") or None
# How many proxies in front of the app append to X-Forwarded-For (0: trust none of it).
TRUSTED_PROXY_DEPTH = env.int("TRUSTED_PROXY_DEPTH", default=0)
# How far back attribution by IP address looks (it never needs more than click retention).
IP_ATTRIBUTION_MAX_DAYS = env.int("IP_ATTRIBUTION_MAX_DAYS", default=90)
# Raw IP addresses of clicks older than this are erased (daily task, docs/privacy.md). Never
# shorter than the attribution window above: attribution by IP address would lose clicks.
CLICK_IP_RETENTION_DAYS = env.int("CLICK_IP_RETENTION_DAYS", default=90)
if CLICK_IP_RETENTION_DAYS < IP_ATTRIBUTION_MAX_DAYS:
    raise ImproperlyConfigured(
        f"CLICK_IP_RETENTION_DAYS ({CLICK_IP_RETENTION_DAYS}) must be at least "
        f"IP_ATTRIBUTION_MAX_DAYS ({IP_ATTRIBUTION_MAX_DAYS})."
    )
# What a partner's data export holds besides the partners app's own records: functions
# (partner) -> sections, so partners never imports commissions.
PARTNER_EXPORT_SECTIONS = ["commissions.privacy.partner_ledger_sections"]
# What else a partner's erasure removes, in apps partners does not import: f(partner).
PARTNER_ERASE_HOOKS = [
    "commissions.privacy.partner_payout_details_erase",
    "commissions.privacy.partner_previews_erase",
]
# The staff partner pages' figures: a function (partners queryset) -> the same annotated with
# click_count, order_count, earned_total and balance, so partners never imports commissions.
PARTNER_FIGURES = "commissions.partner_figures.partners_with_figures"
DEFAULT_CURRENCY = env.str("DEFAULT_CURRENCY", default="USD")
# Partner sign-up (SPEC §9): sign-ups per IP address per hour (0: no limit), and how many
# days the link of the email confirmation works.
SIGNUP_RATE_LIMIT = env.int("SIGNUP_RATE_LIMIT", default=5)
SIGNUP_CONFIRM_DAYS = env.int("SIGNUP_CONFIRM_DAYS", default=7)
# How many days the link of a Partner Center invitation works (SPEC §12; partners.invitations).
PARTNER_INVITE_DAYS = env.int("PARTNER_INVITE_DAYS", default=3)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "import_export",
    "axes",
    "partners",
    "commissions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # Before anything reads the request: bodies over the limit, NUL in the address.
    "referral_program.security.RequestGuardMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # A view that loses the database answers 503 with Retry-After (docs/reliability.md).
    "referral_program.resilience.DatabaseUnavailableMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into a 429 page
]

ROOT_URLCONF = "referral_program.urls"
WSGI_APPLICATION = "referral_program.wsgi.application"
ASGI_APPLICATION = "referral_program.asgi.application"

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
                "django.template.context_processors.csp",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default (`make run`) is a real product mode: concurrent events must queue,
    # never fail with "database is locked" (Django's SQLite notes). WAL lets readers go on
    # while one writer writes; IMMEDIATE takes the write lock when a transaction begins, so a
    # writer waits there (up to the busy timeout) instead of failing halfway through.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=30),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Tests share one database between threads (live servers, concurrent events), which an
    # in-memory database cannot do with real locks: they get a file of their own.
    DATABASES["default"].setdefault("TEST", {}).setdefault(
        "NAME", env.str("SQLITE_TEST_NAME", default=str(BASE_DIR / ".test-db.sqlite3"))
    )
# Keep connections between requests (a new one per request costs more than the request).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # JIT compilation costs more than it saves on the ledger's short aggregate queries.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
    # A database host that does not answer fails the request in seconds, not minutes.
    DATABASES["default"]["OPTIONS"]["connect_timeout"] = env.int(
        "DATABASE_CONNECT_TIMEOUT", default=5
    )
# Every hand-written statement (the tracker's, the event intake's: referral_program.db)
# runs as a prepared statement of each connection on PostgreSQL; turn off behind a pooler
# in transaction mode.
PREPARED_STATEMENTS = env.bool("PREPARED_STATEMENTS", default=True)
# What a 503 for a lost database tells the client to wait (Retry-After, seconds).
DATABASE_RETRY_AFTER_SECONDS = env.int("DATABASE_RETRY_AFTER_SECONDS", default=5)
# SQLite (the try-it-out default) ignores the covering columns of PostgreSQL indexes.
# axes.W006 warns that a lockout without the IP address can be dodged by changing user
# agent or cookies; ours locks the identity whatever they are (see AXES_LOCKOUT_PARAMETERS).
SILENCED_SYSTEM_CHECKS = ["models.W040", "axes.W006"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "partners.lockout.LockoutBackend",  # first: refuses locked-out logins (django-axes)
    "partners.auth.PartnerCodeOrEmailBackend",  # partners: code or email
    "django.contrib.auth.backends.ModelBackend",  # staff: username
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "crm:dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve static files straight from the apps and static/ too (no collectstatic needed to
# try it out); production runs collectstatic and sets this to false.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)
# Uploaded files (the Partner Center's banners): stored under MEDIA_ROOT by the default
# storage, served by the app itself at /media/banners/ (commissions.resource_views), with
# the content type Pillow found and nosniff; MEDIA_URL is not served by anything else.
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
MEDIA_URL = "/media/"
# A banner's limits (SPEC §12; docs/decisions.md): its file size, and its width and height.
RESOURCE_IMAGE_MAX_BYTES = env.int("RESOURCE_IMAGE_MAX_BYTES", default=2 * 1024 * 1024)
RESOURCE_IMAGE_MAX_WIDTH = env.int("RESOURCE_IMAGE_MAX_WIDTH", default=3000)
RESOURCE_IMAGE_MAX_HEIGHT = env.int("RESOURCE_IMAGE_MAX_HEIGHT", default=3000)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str(
            "STATICFILES_BACKEND",
            default="django.contrib.staticfiles.storage.StaticFilesStorage",
        )
    },
}

# Django 6.1 mailers, from EMAIL_URL (e.g. smtp+tls://user:pass@host:587, consolemail://).
_email = env.email_url("EMAIL_URL", default="consolemail://")
_smtp_options = {
    "host": _email.get("EMAIL_HOST"),
    "port": _email.get("EMAIL_PORT"),
    "username": _email.get("EMAIL_HOST_USER"),
    "password": _email.get("EMAIL_HOST_PASSWORD"),
    "use_tls": _email.get("EMAIL_USE_TLS"),
    "use_ssl": _email.get("EMAIL_USE_SSL"),
}
_backend = _email["EMAIL_BACKEND"]
if _backend == "django.core.mail.backends.console.EmailBackend":
    # Hides password-reset and confirmation links unless DEBUG (referral_program/mail.py).
    _backend = "referral_program.mail.ConsoleEmailBackend"
if _backend.endswith("smtp.EmailBackend"):
    _mail_options = {k: v for k, v in _smtp_options.items() if v}
elif _backend.endswith("filebased.EmailBackend"):
    _mail_options = {"file_path": env.str("EMAIL_FILE_PATH", default=str(BASE_DIR / "sent-mail"))}
else:
    _mail_options = {}
MAILERS = {"default": {"BACKEND": _backend, "OPTIONS": _mail_options}}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="partners@localhost")

# Celery: without a broker, tasks run in-process (eagerly) right after commit.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="referral_program")
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Broker down (docs/reliability.md): a task that cannot be queued is logged and skipped
# (referral_program.resilience), and the process leaves the broker alone this long; queued
# notifications whose event arrived over NOTIFICATION_REQUEUE_AFTER_SECONDS ago (and under
# NOTIFICATION_REQUEUE_MAX_HOURS) are queued again every NOTIFICATION_REQUEUE_SECONDS, and
# so are pending webhook deliveries (by when their next attempt fell due) and unsent
# sign-up emails (by when they were made).
BROKER_RETRY_AFTER_SECONDS = env.float("BROKER_RETRY_AFTER_SECONDS", default=5.0)
NOTIFICATION_REQUEUE_SECONDS = env.float("NOTIFICATION_REQUEUE_SECONDS", default=60.0)
NOTIFICATION_REQUEUE_AFTER_SECONDS = env.int("NOTIFICATION_REQUEUE_AFTER_SECONDS", default=120)
NOTIFICATION_REQUEUE_MAX_HOURS = env.int("NOTIFICATION_REQUEUE_MAX_HOURS", default=48)
CELERY_IMPORTS = ["commissions.requeue", "partners.requeue"]

# The click buffer (Redis). Default: the broker, when it is Redis; empty: clicks are
# written to the database by the tracker itself (the embedded default).
CLICK_BUFFER_URL = env.str(
    "CLICK_BUFFER_URL", default=CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else ""
)
CLICK_BUFFER_KEY = env.str("CLICK_BUFFER_KEY", default="rp:clicks")
CLICK_BUFFER_FLUSH_SIZE = env.int("CLICK_BUFFER_FLUSH_SIZE", default=200)
CLICK_BUFFER_FLUSH_MS = env.int("CLICK_BUFFER_FLUSH_MS", default=50)
# The drain runs every few seconds, and at once when this many clicks are waiting.
CLICK_DRAIN_SECONDS = env.float("CLICK_DRAIN_SECONDS", default=2.0)
CLICK_DRAIN_AT = env.int("CLICK_DRAIN_AT", default=5000)
# With the click buffer on, each web process remembers a found partner code's lookup this
# many seconds (partners.tracker_memo); 0 turns it off.
TRACKER_MEMO_SECONDS = env.float("TRACKER_MEMO_SECONDS", default=10.0)
CELERY_BEAT_SCHEDULE = {
    "drain-clicks": {"task": "partners.tasks.drain_clicks", "schedule": CLICK_DRAIN_SECONDS},
    # Unusual click volume (SPEC §9): the last whole hour, at 1, 11, 21... minutes past, so
    # the first run of an hour comes after the click buffer's last drain of the one before.
    "flag-click-volume": {
        "task": "partners.tasks.flag_click_volume",
        "schedule": crontab(minute="1-59/10"),
    },
    "requeue-notifications": {
        "task": "commissions.requeue.requeue_notifications",
        "schedule": NOTIFICATION_REQUEUE_SECONDS,
    },
    "requeue-webhook-deliveries": {
        "task": "commissions.requeue.requeue_webhook_deliveries",
        "schedule": NOTIFICATION_REQUEUE_SECONDS,
    },
    "requeue-signup-emails": {
        "task": "partners.requeue.requeue_signup_emails",
        "schedule": NOTIFICATION_REQUEUE_SECONDS,
    },
    # Once a day: clicks older than CLICK_IP_RETENTION_DAYS lose their raw IP address.
    "erase-old-click-ips": {
        "task": "partners.tasks.erase_old_click_ips",
        "schedule": crontab(hour=3, minute=17),
    },
}

# The cache (default: each process's memory). Set CACHE_URL (e.g. redis://host:6379/1) when
# several processes run, so a change such as a new webhook endpoint is seen by all at once.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

# The integration kit (SPEC §9): hosted web forms and outgoing webhooks.
HOSTED_FORM_POSTS_PER_MINUTE = env.int("HOSTED_FORM_POSTS_PER_MINUTE", default=10)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=10)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=30.0)
WEBHOOK_RETRY_MAX_SECONDS = env.float("WEBHOOK_RETRY_MAX_SECONDS", default=3600.0)
# Webhooks go to public internet addresses only (commissions/webhook_guard.py); true lets a
# developer point one at a receiver on their own machine or network.
WEBHOOK_ALLOW_PRIVATE = env.bool("WEBHOOK_ALLOW_PRIVATE", default=False)
# How long a process may keep its list of active webhook endpoints (changes made through
# the admin clear it at once in the shared cache; see CACHE_URL).
WEBHOOK_ENDPOINTS_CACHE_SECONDS = env.int("WEBHOOK_ENDPOINTS_CACHE_SECONDS", default=60)
# The staff dashboard's figures are worked out at most this often per period (0: on every
# view); the page says when, and its Refresh button works them out at once (docs/decisions.md).
DASHBOARD_CACHE_SECONDS = env.int("DASHBOARD_CACHE_SECONDS", default=60)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "partners.api_auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["partners.api_auth.IsStaffOrApiKey"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON only (SPEC §6), refusing NUL and unpaired surrogates and deep nesting with a 400.
    "DEFAULT_PARSER_CLASSES": ["referral_program.parsers.StrictJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["referral_program.filtering.FilterBackend"],  # each once
    "DEFAULT_PAGINATION_CLASS": "referral_program.pagination.Pagination",  # limit ≤ 1000
    "PAGE_SIZE": 100,
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Referral Partner Program API",
    # The API's and every endpoint's texts are set by referral_program.api_docs (below).
    "DESCRIPTION": "",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No call to the public validator badge: the docs page loads nothing from elsewhere.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",  # the default
        "referral_program.schema_hooks.blank_strings_any_of",  # "" may be blank or match
        "referral_program.schema_hooks.error_answers",  # 400, 401, 403, 404, … declared
        "referral_program.api_docs.operation_texts",  # what the docs say, for developers
    ],
}

# Security. Served over https (SITE_URL says so), the site insists on it.
HTTPS = SITE_URL.startswith("https://")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=HTTPS)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if HTTPS else 0)
# The app's own host and its subdomains only (e.g. aff.shop.example), never the shop's.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=HTTPS)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
# No script reads the CSRF cookie (forms and the API docs get the token in the page).
CSRF_COOKIE_HTTPONLY = True
# Nothing of this site loads from another origin, and no inline script or style runs (the
# API docs' one inline style carries the request's nonce), but for what django-import-export's
# export page in the admin has in its attributes: two styles and the "Select all" box's
# handler, allowed by their hashes (not any other; tests/functional/test_browser_csp.py
# fails when a new version of the page changes them).
CSP_STYLE_ATTRIBUTES = ("padding: 0;", "font-weight: bold;")
CSP_SCRIPT_ATTRIBUTES = ("onSelectToggleChange(event)",)


def _attribute_hashes(values: tuple[str, ...]) -> list[str]:
    """'unsafe-hashes' and each value's hash: these attribute values, and only these, run."""
    return [
        CSP.UNSAFE_HASHES,
        *(
            f"'sha256-{base64.b64encode(hashlib.sha256(v.encode()).digest()).decode()}'"
            for v in values
        ),
    ]


SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, *_attribute_hashes(CSP_SCRIPT_ATTRIBUTES)],
    "style-src": [CSP.SELF, CSP.NONCE, *_attribute_hashes(CSP_STYLE_ATTRIBUTES)],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# Request bodies (issue 7): every body but a file upload is at most this size (an order of
# 1,000 items with long descriptions fits); a larger one is answered 413 before it is read.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("REQUEST_MAX_BYTES", default=4 * 1024 * 1024)
# File uploads (the partners CSV import in the admin).
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=20 * 1024 * 1024)
# django-import-export's own escape for the admin's exports (it drops a leading "="); the
# partner CSV's text columns are escaped with a leading "'" before that (partners/resources.py).
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = True

# Login lockout (django-axes): LOGIN_FAILURE_LIMIT failed logins of one identity (a
# partner's code and email are one identity; staff by username), from any address, lock it
# for LOGIN_COOLOFF_MINUTES. API keys are not locked out: a wrong key is a 401.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
# Login tries (right or wrong, any names) from one client address in a minute, refused with
# 429 before any password is hashed (partners.lockout); 0: no limit.
LOGIN_TRIES_PER_ADDRESS_PER_MINUTE = env.int("LOGIN_TRIES_PER_ADDRESS_PER_MINUTE", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_USERNAME_CALLABLE = "partners.lockout.login_identity"
AXES_CLIENT_IP_CALLABLE = "partners.lockout.login_client_ip"
AXES_RESET_ON_SUCCESS = True
# Tries during a lockout neither count nor extend it: it ends LOGIN_COOLOFF_MINUTES after
# it began, so nobody can keep a partner locked out for good.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "partners.lockout.lockout_response"
# Successful logins are not logged with their IP address (data minimisation).
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False  # no start-up banner on every manage.py command
# Behind a proxy that terminates TLS and sets X-Forwarded-Proto (see docs/deployment.md).
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # A client's error (4xx) is logged as one line, never with a stack trace.
    "filters": {"client_errors_quiet": {"()": "referral_program.security.QuietClientErrors"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["client_errors_quiet"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # django-axes: failed logins and lockouts (warnings), not every successful login.
    "loggers": {"axes": {"level": "WARNING"}},
}
