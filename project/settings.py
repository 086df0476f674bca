"""Settings for the X sign-in site, read from the environment (twelve-factor).

Every value has a laptop-safe default so `make run` works with no configuration;
production is `DEBUG=0`, which turns on every HTTPS protection and refuses to start
without real secrets rather than running insecurely.
"""

import os
from pathlib import Path

import dj_database_url

from project.csp import content_security_policy

BASE_DIR = Path(__file__).resolve().parent.parent


def refuse_to_start(reason: str) -> None:
    """Stop with one readable line instead of a traceback or an insecure start."""
    raise SystemExit(f"Refusing to start: {reason}")


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        refuse_to_start("SECRET_KEY is not set and DEBUG is off; set SECRET_KEY.")
    SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # django.contrib.admin, with the model list grouped for staff (admin_ext.sites).
    "admin_ext.apps.StaffAdminConfig",
    "django.contrib.humanize",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "import_export",
    "django_tasks",
    "django_tasks_db",
    "csp",
    "axes",
    "accounts",
    # allauth's X providers under their own ids, with X's URLs from settings
    # (instead of allauth.socialaccount.providers.twitter / twitter_oauth2).
    "accounts.providers.twitter",
    "accounts.providers.twitter_oauth2",
    "admin_ext",
    "tallies",
]

MIDDLEWARE = [
    "project.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions (a language picked with the switcher is kept there and in a
    # cookie), before CommonMiddleware: the language comes from Accept-Language otherwise.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Last, as django-axes requires: turns a lockout into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

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
                "project.context_processors.site",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while a worker writes; the timeout rides out
    # short write locks instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    # First, so a locked-out username+address is refused before any password check.
    "project.throttling.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

LANGUAGE_CODE = "en"
# People's pages and the staff admin in English and Spanish; LocaleMiddleware picks one
# from the browser's Accept-Language, and the footer's switcher overrides it.
# URLs carry no language prefix. The catalogue is locale/es/LC_MESSAGES/django.po
# (README "Languages").
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/profile/"
LOGOUT_REDIRECT_URL = "/"

# --- django-allauth ---------------------------------------------------------
# Sign-in is through X only; local passwords exist for staff, who use the admin.
# SOCIALACCOUNT_ONLY drops allauth's local-account pages (password set/change/reset,
# email addresses, signup, reauthentication); project/urls.py routes no others.
SOCIALACCOUNT_ONLY = True
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_GET = False
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_EMAIL_REQUIRED = False
SOCIALACCOUNT_QUERY_EMAIL = False
SOCIALACCOUNT_LOGIN_ON_GET = False
# Local signup is closed (staff accounts come from createsuperuser or the admin);
# the social adapter links sign-ins by X user id and stores tokens in XToken.
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.adapter.SocialAccountAdapter"
# Tokens live encrypted in accounts.XToken; allauth's SocialToken would keep them in
# clear, so it never stores any (the sign-in adapter still sees sociallogin.token).
SOCIALACCOUNT_STORE_TOKENS = False

# --- Sessions and caches ------------------------------------------------------
# Django's database sessions; with REDIS_URL, Django's cached_db backend reads them
# from Redis (Django's own RedisCache) and still writes every change to the database,
# so a Redis restart signs nobody out. Only sessions use Redis: everything else in
# the cache is per process, as without it.
REDIS_URL = os.environ.get("REDIS_URL", "")
SESSION_ENGINE = "django.contrib.sessions.backends.db"
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "sessions": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        },
    }
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    SESSION_CACHE_ALIAS = "sessions"

# --- Security ---------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
# Behind a TLS-terminating proxy the app sees plain HTTP; trust the proxy's header
# only when the operator says a proxy is there.
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many proxies append to X-Forwarded-For in front of the site; login throttling
# counts failures against the address the nearest of them saw.
FORWARDED_PROXY_COUNT = env_int(
    "FORWARDED_PROXY_COUNT", 1 if env_bool("SECURE_PROXY_SSL_HEADER", False) else 0
)
# Load balancers probe over plain HTTP; a redirect would read as "down".
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# Password logins (the admin) are throttled by django-axes, per username+address.
AXES_HANDLER = "project.throttling.PasswordLoginAxesHandler"
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15) / 60  # hours, as axes wants
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "project.throttling.client_ip"
# Count a username as the login backends match it (any letter case), so `rEvoker`
# is locked along with `revoker`.
AXES_USERNAME_CALLABLE = "project.throttling.login_identity"
AXES_LOCKOUT_TEMPLATE = "admin/lockout.html"
AXES_VERBOSE = False

# Hashed static files are cached for ten years by WhiteNoise (they never change);
# this is for the rest, which someone may still request by their plain names.
WHITENOISE_MAX_AGE = 0 if DEBUG else 3600

SITE_NAME = os.environ.get("SITE_NAME", "X Sign-in")

# --- X (Twitter) --------------------------------------------------------------
# Credentials turn each sign-in method on: OAuth 1.0a with the consumer pair,
# OAuth 2.0 with the client pair. With neither, the site talks to the bundled
# X sandbox (x_sandbox/) so it can be tried without an X developer account.
X_CONSUMER_KEY = os.environ.get("X_CONSUMER_KEY", "")
X_CONSUMER_SECRET = os.environ.get("X_CONSUMER_SECRET", "")
X_CLIENT_ID = os.environ.get("X_CLIENT_ID", "")
X_CLIENT_SECRET = os.environ.get("X_CLIENT_SECRET", "")
# A laptop with no credentials uses the sandbox; production never does unless told to
# with X_SANDBOX=1, so a forgotten credential cannot send sign-ins to 127.0.0.1:8001.
X_SANDBOX = env_bool(
    "X_SANDBOX",
    DEBUG and not (X_CONSUMER_KEY or X_CONSUMER_SECRET or X_CLIENT_ID or X_CLIENT_SECRET),
)
if (
    not DEBUG
    and not X_SANDBOX
    and not ((X_CONSUMER_KEY and X_CONSUMER_SECRET) or (X_CLIENT_ID and X_CLIENT_SECRET))
):
    refuse_to_start(
        "no X credentials are set and DEBUG is off; set X_CONSUMER_KEY and X_CONSUMER_SECRET "
        "and/or X_CLIENT_ID and X_CLIENT_SECRET, or X_SANDBOX=1 for the bundled X sandbox."
    )
X_SANDBOX_HOST = os.environ.get("X_SANDBOX_HOST", "127.0.0.1")
X_SANDBOX_PORT = env_int("X_SANDBOX_PORT", 8001)
if X_SANDBOX:
    X_CONSUMER_KEY = X_CONSUMER_KEY or "sandbox-consumer-key"
    X_CONSUMER_SECRET = X_CONSUMER_SECRET or "sandbox-consumer-secret"
    X_CLIENT_ID = X_CLIENT_ID or "sandbox-client-id"
    X_CLIENT_SECRET = X_CLIENT_SECRET or "sandbox-client-secret"
    _x_default_api = _x_default_web = f"http://{X_SANDBOX_HOST}:{X_SANDBOX_PORT}"
else:
    _x_default_api, _x_default_web = "https://api.x.com", "https://x.com"
X_API_BASE_URL = os.environ.get("X_API_BASE_URL", _x_default_api).rstrip("/")
X_WEB_BASE_URL = os.environ.get("X_WEB_BASE_URL", _x_default_web).rstrip("/")
X_HTTP_TIMEOUT = float(os.environ.get("X_HTTP_TIMEOUT", "10"))
X_HTTP_RETRIES = env_int("X_HTTP_RETRIES", 2)
X_OAUTH2_SCOPES = ["tweet.read", "users.read", "offline.access"]
# One allauth app per sign-in method that has credentials; a method without them
# is not offered. Both providers read X's URLs from the two settings above.
SOCIALACCOUNT_PROVIDERS = {}
if X_CONSUMER_KEY and X_CONSUMER_SECRET:
    SOCIALACCOUNT_PROVIDERS["twitter"] = {
        "APP": {"client_id": X_CONSUMER_KEY, "secret": X_CONSUMER_SECRET},
    }
if X_CLIENT_ID and X_CLIENT_SECRET:
    SOCIALACCOUNT_PROVIDERS["twitter_oauth2"] = {
        "APP": {"client_id": X_CLIENT_ID, "secret": X_CLIENT_SECRET},
        "SCOPE": X_OAUTH2_SCOPES,
        "OAUTH_PKCE_ENABLED": True,
    }

# --- Content-Security-Policy (django-csp) ---------------------------------------
# Nothing inline, nothing from a CDN; X's origins (from the base URLs above) in
# form-action for the sign-in redirect and, with the sandbox, in img-src for avatars.
CONTENT_SECURITY_POLICY = content_security_policy(X_API_BASE_URL, X_WEB_BASE_URL, X_SANDBOX)

# Fernet keys, comma-separated: the first encrypts, all decrypt, so a new key can
# be put in front and old rows re-encrypted (`manage.py rotate_token_keys`).
TOKEN_ENCRYPTION_KEYS = env_list("TOKEN_ENCRYPTION_KEYS", [])
if not TOKEN_ENCRYPTION_KEYS and not DEBUG:
    refuse_to_start(
        "TOKEN_ENCRYPTION_KEYS is not set and DEBUG is off; production never derives the "
        "token key from SECRET_KEY."
    )

# --- Background jobs (django-tasks on the database) ---------------------------
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# Staff token actions: selections above this many tokens (or "select all") run as a
# background job; each job calls X from at most this many threads at once; a 429 is
# waited out, each wait capped at X's 15-minute window.
ADMIN_EXT_SYNC_LIMIT = env_int("ADMIN_EXT_SYNC_LIMIT", 50)
ADMIN_EXT_POOL_SIZE = env_int("ADMIN_EXT_POOL_SIZE", 16)
ADMIN_EXT_MAX_RATE_LIMIT_WAIT = env_int("ADMIN_EXT_MAX_RATE_LIMIT_WAIT", 15 * 60)
# Seconds a job runner's claim on its items lasts without a heartbeat; after that a
# crashed runner's items are picked up again by a resumed job.
ADMIN_EXT_CLAIM_LEASE = env_int("ADMIN_EXT_CLAIM_LEASE", 60)
# Profile exports: XLSX of more rows than this is written by a worker into
# EXPORT_DIR (private, never served as media) and downloaded from the admin.
EXPORT_XLSX_SYNC_LIMIT = env_int("EXPORT_XLSX_SYNC_LIMIT", 5000)
EXPORT_DIR = Path(os.environ.get("EXPORT_DIR", BASE_DIR / "exports"))
# Finished exports older than this are deleted by `manage.py prune_exports`.
EXPORT_RETENTION_DAYS = env_int("EXPORT_RETENTION_DAYS", 7)

# --- Logging --------------------------------------------------------------------
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
# Production logs one JSON object per line (project.logging); every handler carries
# the filter that scrubs tokens, secrets, verifiers, codes and states.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "project.logging.RedactSecretsFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "project.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            # stderr, so commands that write data to stdout (export_profiles -o -)
            # never mix log lines into it.
            "stream": "ext://sys.stderr",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # One line per request; on a laptop runserver already prints one.
        "project.request": {"level": "INFO" if LOG_FORMAT == "json" else "WARNING"},
        # axes writes two INFO lines for every login, X sign-ins included; lockouts
        # are warnings and still show.
        "axes": {"level": "WARNING"},
    },
}
