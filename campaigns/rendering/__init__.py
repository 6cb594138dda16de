"""Rendering marketers' templates: pure functions, no database."""

from campaigns.rendering.context import build_context, sample_context
from campaigns.rendering.errors import TemplateError
from campaigns.rendering.render import RenderedMessage, render
from campaigns.rendering.sources import ContentSource, VersionSource

__all__ = [
    "ContentSource",
    "RenderedMessage",
    "TemplateError",
    "VersionSource",
    "build_context",
    "render",
    "sample_context",
]
