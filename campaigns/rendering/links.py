"""Links every message may carry (preference centre, unsubscribe, view in browser).

The campaigns app does not know how those links are signed: the consent app registers a
provider in its ``AppConfig.ready()``::

    from campaigns.rendering.links import link_providers
    link_providers.register("consent", consent_links)  # (customer_id=, topic=, message_ref=) -> {name: url}
"""

import logging
from collections.abc import Callable, Mapping
from typing import Any

logger = logging.getLogger(__name__)

LinkProvider = Callable[..., Mapping[str, str]]


class LinkProviders:
    def __init__(self) -> None:
        self._providers: dict[str, LinkProvider] = {}

    def register(self, name: str, provider: LinkProvider) -> None:
        self._providers[name] = provider

    def unregister(self, name: str) -> None:
        self._providers.pop(name, None)

    def collect(self, **kwargs: Any) -> dict[str, str]:
        """Every provider's links, later registrations winning on a clash of names."""
        links: dict[str, str] = {}
        for provider in self._providers.values():
            links.update(provider(**kwargs))
        return links


link_providers = LinkProviders()
