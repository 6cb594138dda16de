"""What a template version is made of, as plain data: rendering needs no database."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The fields of each channel that are templates (the others are taken as they are).
TEMPLATE_FIELDS: dict[str, tuple[str, ...]] = {
    "email": ("subject", "preheader", "html", "text"),
    "sms": ("body",),
    "push": ("title", "body", "image_url", "deep_link"),
    "webhook": ("url", "body"),
}
# Fields whose values are a mapping of name to template.
TEMPLATE_MAPPINGS: dict[str, tuple[str, ...]] = {
    "email": (),
    "sms": (),
    "push": ("data",),
    "webhook": ("headers",),
}
HTML_FIELDS = frozenset({"html"})


@dataclass(frozen=True)
class ContentSource:
    """A version's content in one locale."""

    locale: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class VersionSource:
    """A template version. ``frozen`` versions (published) are cached by ``id``."""

    id: int | None
    channel: str
    default_locale: str
    contents: tuple[ContentSource, ...]
    frozen: bool = False
    _by_locale: dict[str, ContentSource] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for content in self.contents:
            self._by_locale[normalise_locale(content.locale)] = content

    def content_for(self, locale: str | None) -> ContentSource:
        """Exact locale, then its language, then the template's default, then any."""
        wanted = normalise_locale(locale or "")
        if wanted:
            if wanted in self._by_locale:
                return self._by_locale[wanted]
            language = wanted.split("-", 1)[0]
            if language in self._by_locale:
                return self._by_locale[language]
        default = normalise_locale(self.default_locale)
        if default in self._by_locale:
            return self._by_locale[default]
        default_language = default.split("-", 1)[0]
        if default_language in self._by_locale:
            return self._by_locale[default_language]
        if not self.contents:
            raise LookupError("the template version has no content")
        return self.contents[0]


def normalise_locale(locale: str) -> str:
    """``fr_ca`` and ``fr-CA`` are the same locale: compare them as ``fr-ca``."""
    return locale.strip().replace("_", "-").lower()
