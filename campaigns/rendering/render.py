"""Rendering a template version for one customer: a pure function of its inputs.

Compiled templates are cached by version id (published versions never change, so the
cache never needs expiring); drafts are compiled afresh.
"""

import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Template, TemplateNotFound, TemplateSyntaxError, nodes
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
    # Email: the body inlined into its layout, so one render makes the whole HTML part
    # and one the whole text part.
    full_html: "_Part | None" = None
    full_text: "_Part | None" = None
    # Fallbacks when the text cannot be derived from the HTML source once per version.
    layout_html: Template | None = None
    layout_text: Template | None = None
    static: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Part:
    """A template made of a field's source inlined into a layout; errors are reported
    against the field's own lines when they fall inside it, against the layout's if not."""

    template: Template
    field: str
    start: int = 1  # the line of the combined source where the field begins
    lines: int = 0  # how many lines of the field; 0 when there is no layout around it

    def locate(self, line: int | None) -> tuple[str, int | None]:
        if line is None or not self.lines:
            return self.field, line
        if line < self.start:
            return "layout", line
        if line < self.start + self.lines:
            return self.field, line - self.start + 1
        return "layout", line - self.lines + 1


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
    email_context = {**context, "subject": message.subject, "preheader": message.preheader}
    if compiled.full_text is not None:
        message.html = _render_part(compiled.full_html, email_context, locale)
        message.text = _render_part(compiled.full_text, email_context, locale)
    else:
        # The text is derived from this message's HTML body, then laid out.
        body_html = _render_part(compiled.full_html, email_context, locale)
        text = html_to_text(body_html)
        message.html = body_html
        if compiled.layout_html is not None:
            message.html = _render_field(
                compiled.layout_html,
                {**email_context, "content": Markup(body_html)},  # noqa: S704 - sandbox output
                "layout",
                locale,
            )
        if compiled.layout_text is not None:
            text = _render_field(
                compiled.layout_text, {**email_context, "content": text}, "layout", locale
            )
        message.text = text
    message.text = _tidy_text(message.text)


def _render_part(part: _Part, context: Mapping[str, Any], locale: str) -> str:
    try:
        return _render_field(part.template, context, part.field, locale)
    except TemplateError as error:
        error.field, error.line = part.locate(error.line)
        raise


_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+\n")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


def _tidy_text(text: str) -> str:
    # Tags on lines of their own (loops, conditions, the layout) leave blank runs behind.
    return _BLANK_LINES.sub("\n\n", _TRAILING_SPACE.sub("\n", text)).strip()


# ``Template.render`` merges the template's globals, a ChainMap and slow to iterate, into
# every render's variables and then lists them again; an email is four renders. The
# globals of a compiled template never change: they are merged into a dict once.
_globals: weakref.WeakKeyDictionary[Template, dict[str, Any]] = weakref.WeakKeyDictionary()


def _render_template(template: Template, context: Mapping[str, Any]) -> str:
    """What ``template.render(context)`` gives, with the template's globals merged once."""
    template_globals = _globals.get(template)
    if template_globals is None:
        template_globals = _globals[template] = dict(template.globals)
    environment = template.environment
    jinja_context = environment.context_class(
        environment,
        {**template_globals, **context},
        template.name,
        template.blocks,
        globals=template_globals,
    )
    try:
        return environment.concat(template.root_render_func(jinja_context))
    except Exception:
        environment.handle_exception()  # raises, with the template's lines in the traceback
        raise


def _render_field(template: Template, context: Mapping[str, Any], name: str, locale: str) -> str:
    try:
        output = _render_template(template, context)
    except JinjaTemplateError as error:
        raise TemplateError(
            _message_of(error), field=name, line=_line_of(error, template), locale=locale
        ) from error
    except (
        ValueError,
        TypeError,
        ArithmeticError,
        LookupError,
        AttributeError,
        RuntimeError,
    ) as error:
        # A filter given the wrong kind of value, an operation on mismatched types, a
        # macro calling itself without end (RecursionError).
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
        _links_used.clear()


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
        _compile_email(compiled, fields, content.locale)
    return compiled


def _compile_email(compiled: _Compiled, fields: Mapping[str, Any], locale: str) -> None:
    html_source = fields.get("html") or ""
    text_source = fields.get("text") or ""
    # Each field alone first, so that an error is reported against the marketer's lines.
    compiled_html = compiled.templates.pop("html")
    compiled_text = compiled.templates.pop("text")
    if not text_source.strip():
        text_source = derive_text_source(html_source)
        if text_source is not None:
            try:
                compile_field(text_source, name="html", locale=locale)
            except TemplateError:
                text_source = None
    layout = (fields.get("layout") or "").strip()
    layout_html = layout_text = None
    if layout:
        layout_html, layout_text = _layout_sources(layout)
    if text_source is None:
        # The text will be derived per message from the HTML body rendered alone.
        compiled.full_html = _Part(template=compiled_html, field="html")
        if layout:
            compiled.layout_html, compiled.layout_text = _layouts(layout)
        return
    compiled.full_html = _inline(html_source, layout_html, "html", True, compiled_html)
    plain = compiled_text if (fields.get("text") or "").strip() else None
    compiled.full_text = _inline(
        text_source, layout_text, "text" if plain else "html", False, plain
    )


_CONTENT = re.compile(r"\{\{-?\s*content\s*-?\}\}")


def _inline(
    source: str, layout: str | None, name: str, html: bool, alone: Template | None
) -> _Part:
    if layout is None or len(_CONTENT.findall(layout)) != 1:
        template = alone or compile_field(source, name=name, html=html)
        if layout is None:
            return _Part(template=template, field=name)
        raise TemplateError("the layout must contain {{ content }} once", field="layout")
    match = _CONTENT.search(layout)
    combined = layout[: match.start()] + source + layout[match.end() :]
    try:
        template = compile_field(combined, name=f"{name}+layout", html=html)
    except TemplateError as error:
        raise TemplateError(
            f"the content does not fit in the layout: {error.message}", field=name
        ) from error
    return _Part(
        template=template,
        field=name,
        start=layout.count("\n", 0, match.start()) + 1,
        lines=source.count("\n") + 1,
    )


_LAYOUT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def _layout_sources(layout: str) -> tuple[str, str | None]:
    if not _LAYOUT_NAME.match(layout):
        raise TemplateError(f"unknown layout {layout!r}", field="layout")
    loader = html_environment.loader
    try:
        html, _, _ = loader.get_source(html_environment, f"email/{layout}.html")
    except TemplateNotFound:
        raise TemplateError(f"unknown layout {layout!r}", field="layout") from None
    try:
        text, _, _ = loader.get_source(text_environment, f"email/{layout}.txt")
    except TemplateNotFound:
        text = None
    return html, text


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


def derive_text_source(html_source: str) -> str | None:
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
    if sorted(found) != list(range(len(tags))):
        return None  # a tag was dropped or doubled
    # A link's address moves after its text, so expressions may change places; the
    # statements ({% if %}, {% for %}, …) must keep their order.
    statements = [number for number in found if not tags[number].startswith("{{")]
    if statements != sorted(statements):
        return None
    # Entities in the HTML may decode to characters that would start a Jinja tag.
    if re.search(r"\{[{%#]", _PLACEHOLDER.sub("", text)):
        return None
    return _PLACEHOLDER.sub(lambda match: tags[int(match.group(1))], text)


# Which links a version uses ----------------------------------------------------------

_links_used: OrderedDict[int, frozenset[str] | None] = OrderedDict()
_INCLUDES = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)


def links_used(version: VersionSource) -> frozenset[str] | None:
    """The names of ``links`` the version's templates (every locale, and the layout) read,
    or None when that cannot be told (``links`` passed whole, an include, a syntax error).

    Each link is a signed token: dispatch makes only the ones a message shows.
    """
    if version.id is not None and version.frozen and version.id in _links_used:
        return _links_used[version.id]
    found: set[str] | None = set()
    for content in version.contents:
        for source in _sources_of(version.channel, content.fields):
            names = _link_names(source)
            if names is None:
                found = None
                break
            found |= names
        if found is None:
            break
    result = frozenset(found) if found is not None else None
    if version.id is not None and version.frozen:
        with _cache_lock:
            _links_used[version.id] = result
            while len(_links_used) > CACHE_SIZE:
                _links_used.popitem(last=False)
    return result


def _sources_of(channel: str, fields: Mapping[str, Any]) -> list[str]:
    sources = [str(fields.get(name) or "") for name in TEMPLATE_FIELDS[channel]]
    for name in TEMPLATE_MAPPINGS[channel]:
        values = fields.get(name) or {}
        if isinstance(values, Mapping):
            sources += [str(value) for value in values.values()]
    layout = (fields.get("layout") or "").strip() if channel == "email" else ""
    if layout:
        try:
            html, text = _layout_sources(layout)
        except TemplateError:
            return sources
        sources += [html, text or ""]
    return sources


def _link_names(source: str) -> set[str] | None:
    if "links" not in source:
        return set()
    try:
        tree = text_environment.parse(source)
    except TemplateSyntaxError:
        return None
    if any(True for _ in tree.find_all(_INCLUDES)):
        return None
    names: set[str] = set()
    understood: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Test)):
        target = node.node
        if not (isinstance(target, nodes.Name) and target.name == "links"):
            continue
        if isinstance(node, nodes.Getattr):
            names.add(node.attr)
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            names.add(str(node.arg.value))
        elif not (isinstance(node, nodes.Test) and node.name in ("defined", "undefined")):
            continue
        understood.add(id(target))
    for name in tree.find_all(nodes.Name):
        if name.name == "links" and id(name) not in understood:
            return None  # passed whole, looped over, assigned: every link may be read
    return names
