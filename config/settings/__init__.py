"""Settings, read from the environment and split by concern.

A missing or malformed variable stops the process with one line naming it, not a traceback.
"""

from django.core.exceptions import ImproperlyConfigured

try:
    from config.settings.api import *  # noqa: F403
    from config.settings.base import *  # noqa: F403
    from config.settings.channels import *  # noqa: F403
    from config.settings.consent import *  # noqa: F403
    from config.settings.email import *  # noqa: F403
    from config.settings.logging import *  # noqa: F403
    from config.settings.security import *  # noqa: F403
    from config.settings.services import *  # noqa: F403
except ImproperlyConfigured as error:
    raise SystemExit(f"journeyline: configuration error: {error}") from None
