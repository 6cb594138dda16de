from pathlib import Path

from config.env import env_bool, env_int, env_str

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Journeyline <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# django-anymail: the tracking webhooks' basic-auth "user:password" (set it in production;
# without it Anymail accepts anyone's webhook and warns).
ANYMAIL = {}
if env_str("ANYMAIL_WEBHOOK_SECRET", ""):
    ANYMAIL["WEBHOOK_SECRET"] = env_str("ANYMAIL_WEBHOOK_SECRET")
# For the file-based backend (make serve / make demo without a mail server): one file per
# connection under this folder.
EMAIL_FILE_PATH = env_str(
    "EMAIL_FILE_PATH", str(Path(__file__).resolve().parents[2] / "var" / "mail")
)
