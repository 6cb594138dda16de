"""Settings, read from the environment and split by concern."""

from config.settings.api import *  # noqa: F403
from config.settings.base import *  # noqa: F403
from config.settings.email import *  # noqa: F403
from config.settings.logging import *  # noqa: F403
from config.settings.security import *  # noqa: F403
from config.settings.services import *  # noqa: F403
