"""Rendering a template version for one customer: a pure function of its inputs.

Compiled templates are cached by version id (published versions never change, so the
cache never needs expiring); drafts are compiled afresh.
"""

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Template, TemplateNotFound, TemplateSyntaxError
from jinja2.exceptions import TemplateError as JinjaTemplateError
from markupsafe import Markup

from campaigns.rendering.environment import html_environment, text_environment
from campaigns.rendering.errors import TemplateError
from campaigns.rendering.html_to_text import html_to_text
from campaigns.rendering.sources import (
    HTML_FIELDS,
    TEMPLATE_FIELDS,
    TEMPLATE_MAPPINGS,
    ContentSource,
    VersionSource,
)

MAX_OUTPUT = 1_000_000
CACHE_SIZE = 2_048


@dataclass
class RenderedMessage:
    channel: str
    locale: str
    version_id: int | None = None
    subject: str = ""
    preheader: str = ""
    html: str = ""
    text: str = ""
    body: str = ""
    title: str = ""
    image_url: str = ""
    deep_link: str = ""
    data: dict[str, str] = field(default_factory=dict)
    url: str = ""
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Compiled:
    """The compiled templates of one content: field → template, and the email's extras."""

    templates: dict[str, Template]
    mappings: dict[str, dict[str, Template]]
    layout_html: Template | None = None
    layout_text: Template | None = None
    # The text part derived from the HTML source once, when the HTML allows it.
    derived_text: Template | None = None
    static: dict[str, Any] = field(default_factory=dict)


_cache: OrderedDict[tuple[int, str], _Compiled] = OrderedDict()
_cache_lock = threading.Lock()


def render(
    version: VersionSource, context: Mapping[str, Any], *, locale: str | None = None
) -> RenderedMessage:
    """Render ``version`` for ``context`` (see ``build_context``); raise ``TemplateError``."""
    content = version.content_for(locale if locale is not None else context.get("locale"))
    compiled = compiled_content(version, content)
    message = RenderedMessage(
        channel=version.channel, locale=content.locale, version_id=version.id, **compiled.static
    )
    for name, template in compiled.templates.items():
        setattr(message, name, _render_field(template, context, name, content.locale))
    for name, templates in compiled.mappings.items():
        setattr(
            message,
            name,
            {
                key: _render_field(template, context, f"{name}.{key}", content.locale)
                for key, template in templates.items()
            },
        )
    if version.channel == "email":
        _finish_email(message, compiled, context, content.locale)
    return message


def _finish_email(
    message: RenderedMessage, compiled: _Compiled, context: Mapping[str, Any], locale: str
) -> None:
    body_html = message.html
    if not message.text:
        if compiled.derived_text is not None:
            message.text = _render_field(compiled.derived_text, context, "html", locale)
        else:
            message.text = html_to_text(body_html)
    if compiled.layout_html is not None:
        layout_context = {
            **context,
            "subject": message.subject,
            "preheader": message.preheader,
            "content": Markup(body_html),  # noqa: S704 - rendered by the autoescaping sandbox
        }
        message.html = _render_field(compiled.layout_html, layout_context, "layout", locale)
        if compiled.layout_text is not None:
            message.text = _render_field(
                compiled.layout_text, {**layout_context, "content": message.text}, "layout", locale
            )
    message.text = _tidy_text(message.text)


_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+\n")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


def _tidy_text(text: str) -> str:
    # Tags on lines of their own (loops, conditions, the layout) leave blank runs behind.
    return _BLANK_LINES.sub("\n\n", _TRAILING_SPACE.sub("\n", text)).strip()


def _render_field(template: Template, context: Mapping[str, Any], name: str, locale: str) -> str:
    try:
        output = template.render(context)
    except JinjaTemplateError as error:
        raise TemplateError(
            _message_of(error), field=name, line=_line_of(error, template), locale=locale
        ) from error
    except (ValueError, TypeError, ArithmeticError, LookupError) as error:
        # A filter given the wrong kind of value, or an operation on mismatched types.
        raise TemplateError(
            str(error) or type(error).__name__,
            field=name,
            line=_line_of(error, template),
            locale=locale,
        ) from error
    if len(output) > MAX_OUTPUT:
        raise TemplateError(f"output is longer than {MAX_OUTPUT} characters", field=name)
    return output


def _message_of(error: JinjaTemplateError) -> str:
    text = error.message or type(error).__name__
    if type(error).__name__ == "SecurityError":
        return f"not allowed: {text}"
    return text


def _line_of(error: BaseException, template: Template) -> int | None:
    if isinstance(error, TemplateSyntaxError):
        return error.lineno
    # Jinja rewrites the traceback so that frames of template code carry template lines.
    line = None
    traceback = error.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == template.filename:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line


# Compiling ---------------------------------------------------------------------------


def compiled_content(version: VersionSource, content: ContentSource) -> _Compiled:
    if version.id is None or not version.frozen:
        return _compile(version, content)
    key = (version.id, content.locale)
    compiled = _cache.get(key)
    if compiled is not None:
        return compiled
    compiled = _compile(version, content)
    with _cache_lock:
        _cache[key] = compiled
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return compiled


def cache_clear() -> None:
    with _cache_lock:
        _cache.clear()


def compile_field(source: str, *, name: str, html: bool = False, locale: str = "") -> Template:
    """Compile one field; a syntax error becomes a ``TemplateError`` with its line."""
    environment = html_environment if html else text_environment
    filename = f"<{name}>"
    try:
        code = environment.compile(source, name=name, filename=filename)
    except TemplateSyntaxError as error:
        raise TemplateError(
            error.message or "syntax error", field=name, line=error.lineno, locale=locale
        ) from error
    return environment.template_class.from_code(
        environment, code, environment.make_globals(None), None
    )


def _compile(version: VersionSource, content: ContentSource) -> _Compiled:
    channel = version.channel
    fields = content.fields
    templates = {
        name: compile_field(
            fields.get(name) or "", name=name, html=name in HTML_FIELDS, locale=content.locale
        )
        for name in TEMPLATE_FIELDS[channel]
    }
    mappings: dict[str, dict[str, Template]] = {}
    for name in TEMPLATE_MAPPINGS[channel]:
        values = fields.get(name) or {}
        if not isinstance(values, Mapping):
            raise TemplateError("must be a mapping of names to text", field=name)
        mappings[name] = {
            str(key): compile_field(str(value), name=f"{name}.{key}", locale=content.locale)
            for key, value in values.items()
        }
    compiled = _Compiled(templates=templates, mappings=mappings)
    if channel == "webhook":
        compiled.static["method"] = (fields.get("method") or "POST").upper()
    if channel == "email":
        if not (fields.get("text") or "").strip():
            del compiled.templates["text"]
            compiled.derived_text = _derive_text_template(fields.get("html") or "")
        layout = (fields.get("layout") or "").strip()
        if layout:
            compiled.layout_html, compiled.layout_text = _layouts(layout)
    return compiled


_LAYOUT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def _layouts(layout: str) -> tuple[Template, Template | None]:
    if not _LAYOUT_NAME.match(layout):
        raise TemplateError(f"unknown layout {layout!r}", field="layout")
    try:
        html = html_environment.get_template(f"email/{layout}.html")
    except TemplateNotFound:
        raise TemplateError(f"unknown layout {layout!r}", field="layout") from None
    try:
        text = text_environment.get_template(f"email/{layout}.txt")
    except TemplateNotFound:
        text = None
    return html, text


# Jinja tags survive the HTML-to-text conversion as opaque placeholders.
_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_PLACEHOLDER = re.compile("\ue000(\\d+)\ue001")


def _derive_text_template(html_source: str) -> Template | None:
    """The text part as a template derived from the HTML source, or None to derive per send.

    Converting once per version instead of once per message keeps rendering fast. Values
    then render unescaped, as plain text should. When a tag sits where the conversion
    drops or reorders it (inside an HTML tag, say), the text is derived per message.
    """
    tags: list[str] = []

    def protect(match: re.Match[str]) -> str:
        tags.append(match.group(0))
        return f"\ue000{len(tags) - 1}\ue001"

    protected = _JINJA_TAG.sub(protect, html_source)
    text = html_to_text(protected)
    found = [int(number) for number in _PLACEHOLDER.findall(text)]
    if found != list(range(len(tags))):
        return None
    # Entities in the HTML may decode to characters that would start a Jinja tag.
    if re.search(r"\{[{%#]", _PLACEHOLDER.sub("", text)):
        return None
    source = _PLACEHOLDER.sub(lambda match: tags[int(match.group(1))], text)
    try:
        return compile_field(source, name="html")
    except TemplateError:
        return None
