"""Reading templates and versions."""

from campaigns.models import TemplateContent, TemplateVersion
from campaigns.rendering.sources import ContentSource, VersionSource
from customers.models import Customer

_CONTENT_FIELDS = (
    "subject",
    "preheader",
    "html",
    "text",
    "layout",
    "body",
    "title",
    "image_url",
    "deep_link",
    "data",
    "url",
    "method",
    "headers",
)


def content_source(content: TemplateContent) -> ContentSource:
    return ContentSource(
        locale=content.locale, fields={name: getattr(content, name) for name in _CONTENT_FIELDS}
    )


def version_source(version: TemplateVersion) -> VersionSource:
    """The version as plain data for rendering. Published versions are cached by id."""
    return VersionSource(
        id=version.pk,
        channel=version.template.channel,
        default_locale=version.template.default_locale,
        contents=tuple(content_source(content) for content in version.contents.all()),
        frozen=version.is_published,
    )


def template_version_get(*, version_id: int) -> TemplateVersion:
    return (
        TemplateVersion.objects.select_related("template")
        .prefetch_related("contents")
        .get(pk=version_id)
    )


def template_current_version(*, template_id: int) -> TemplateVersion | None:
    """The latest published version: the one sends use."""
    return (
        TemplateVersion.objects.select_related("template")
        .prefetch_related("contents")
        .filter(template_id=template_id, published_at__isnull=False)
        .order_by("-published_at", "-number")
        .first()
    )


def customer_find(*, query: str) -> Customer | None:
    """A customer by id, user id or email address, as typed in the admin."""
    query = query.strip()
    if not query:
        return None
    if query.isdigit():
        found = Customer.objects.filter(pk=int(query)).first()
        if found is not None:
            return found
    found = Customer.objects.filter(external_id=query).first()
    if found is None and "@" in query:
        found = Customer.objects.filter(email__iexact=query).order_by("pk").first()
    return found
