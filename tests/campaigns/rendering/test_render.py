"""Rendering is pure: these tests need no database."""

import datetime as dt

import pytest

from campaigns.rendering import (
    ContentSource,
    TemplateError,
    VersionSource,
    build_context,
    render,
)
from campaigns.rendering.render import cache_clear, compiled_content

NOW = dt.datetime(2026, 11, 22, 23, 30, tzinfo=dt.UTC)


def email_version(*, frozen=False, version_id=None, **fields):
    content = {"subject": "Hello", "html": "<p>Hi</p>", "layout": "", **fields}
    return VersionSource(
        id=version_id,
        channel="email",
        default_locale="en",
        contents=(ContentSource("en", content),),
        frozen=frozen,
    )


def context_for(**customer):
    base = {"id": 7, "email": "ann@example.com", "locale": "en", "timezone": "", "traits": {}}
    return build_context(customer={**base, **customer}, now=NOW)


def test_customer_fields_and_traits_are_both_reachable():
    # given a template using a field, a trait at the top level and through traits
    version = email_version(
        subject="{{ customer.first_name }} <{{ customer.email }}>",
        html="<p>{{ customer.traits.first_name }}</p>",
    )
    # when rendered for a customer with that trait
    message = render(version, context_for(traits={"first_name": "Ann", "email": "shadow"}))
    # then the field wins over a trait of the same name
    assert message.subject == "Ann <ann@example.com>"
    assert message.html == "<p>Ann</p>"


def test_html_is_escaped_and_subject_and_text_are_not():
    version = email_version(
        subject="{{ customer.name }}",
        html="<p>{{ customer.name }}</p>",
        text="{{ customer.name }}",
    )
    message = render(version, context_for(traits={"name": "Tom & <Jerry>"}))
    assert message.subject == "Tom & <Jerry>"
    assert message.html == "<p>Tom &amp; &lt;Jerry&gt;</p>"
    assert message.text == "Tom & <Jerry>"


def test_text_is_derived_from_the_html_when_left_empty():
    version = email_version(
        html=(
            "<h1>Hello {{ customer.name }}</h1>\n"
            '<p>Your order ships.<br>Track it <a href="{{ event.properties.url }}">here</a></p>'
            "<ul>{% for item in event.properties['items'] %}<li>{{ item }}</li>{% endfor %}</ul>"
        )
    )
    context = context_for(traits={"name": "Ann & Co"})
    context["event"] = {
        "properties": {"url": "https://shop.test/t?a=1&b=2", "items": ["Hat", "Cap"]}
    }
    message = render(version, context)
    assert message.text == (
        "Hello Ann & Co\n\nYour order ships.\nTrack it here (https://shop.test/t?a=1&b=2)\n\n"
        "- Hat\n- Cap"
    )


def test_text_derivation_falls_back_per_message_when_tags_sit_inside_html_tags():
    version = email_version(
        html='<p {% if customer.vip %}class="vip"{% endif %}>Hi {{ customer.name }}</p>'
    )
    message = render(version, context_for(traits={"name": "Ann", "vip": True}))
    assert message.html == '<p class="vip">Hi Ann</p>'
    assert message.text == "Hi Ann"


def test_layout_wraps_the_html_with_preheader_and_footer_links():
    version = email_version(layout="base", preheader="Sale ends {{ now|date }}", html="<p>Body</p>")
    context = context_for()
    context["links"] = {
        "unsubscribe": "https://j.test/u/abc",
        "preferences": "https://j.test/p/abc",
    }
    message = render(version, context)
    assert "<p>Body</p>" in message.html
    assert "Sale ends Nov 22, 2026" in message.html
    assert 'href="https://j.test/u/abc"' in message.html
    assert 'href="https://j.test/p/abc"' in message.html
    assert message.text.startswith("Body\n")
    assert "Unsubscribe: https://j.test/u/abc" in message.text


def test_layout_without_links_has_no_footer_links():
    message = render(email_version(layout="base"), context_for())
    assert "Unsubscribe" not in message.html
    assert message.text == "Hi"


def test_unknown_layout_is_an_error():
    with pytest.raises(TemplateError) as error:
        render(email_version(layout="../secrets"), context_for())
    assert error.value.field == "layout"


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("fr-CA", "Bonjour (Canada)"),
        ("fr_ca", "Bonjour (Canada)"),
        ("fr-BE", "Bonjour"),
        ("fr", "Bonjour"),
        ("de-AT", "Hello"),
        ("", "Hello"),
    ],
)
def test_locale_falls_back_to_language_then_template_default(locale, expected):
    version = VersionSource(
        id=None,
        channel="sms",
        default_locale="en",
        contents=(
            ContentSource("en", {"body": "Hello"}),
            ContentSource("fr", {"body": "Bonjour"}),
            ContentSource("fr-CA", {"body": "Bonjour (Canada)"}),
        ),
    )
    message = render(version, context_for(locale=locale))
    assert message.body == expected


def test_push_fields_and_data_are_rendered():
    version = VersionSource(
        id=None,
        channel="push",
        default_locale="en",
        contents=(
            ContentSource(
                "en",
                {
                    "title": "Hi {{ customer.first_name }}",
                    "body": "{{ 2|pluralize('item', 'items') }} waiting",
                    "image_url": "https://img.test/{{ customer.id }}.png",
                    "deep_link": "app://cart/{{ customer.id }}",
                    "data": {"cart": "{{ customer.id }}", "kind": "reminder"},
                },
            ),
        ),
    )
    message = render(version, context_for(traits={"first_name": "Ann"}))
    assert (message.title, message.body) == ("Hi Ann", "items waiting")
    assert (message.image_url, message.deep_link) == ("https://img.test/7.png", "app://cart/7")
    assert message.data == {"cart": "7", "kind": "reminder"}


def test_webhook_url_headers_body_and_method():
    version = VersionSource(
        id=None,
        channel="webhook",
        default_locale="en",
        contents=(
            ContentSource(
                "en",
                {
                    "url": "https://crm.test/hooks/{{ customer.id }}",
                    "method": "put",
                    "headers": {"X-Customer": "{{ customer.id }}"},
                    "body": '{"email": {{ customer.email|tojson }}}',
                },
            ),
        ),
    )
    message = render(version, context_for())
    assert message.url == "https://crm.test/hooks/7"
    assert message.method == "PUT"
    assert message.headers == {"X-Customer": "7"}
    assert message.body == '{"email": "ann@example.com"}'


def test_unknown_variable_is_an_error_with_its_line():
    version = email_version(html="<p>one</p>\n<p>two</p>\n<p>{{ customer.traits.plan }}</p>")
    with pytest.raises(TemplateError) as error:
        render(version, context_for())
    assert (error.value.field, error.value.line) == ("html", 3)
    assert "plan" in error.value.message
    assert str(error.value).startswith("html [en], line 3:")


def test_default_handles_optional_values():
    version = email_version(html="<p>{{ customer.traits.plan|default('free') }}</p>")
    assert render(version, context_for()).html == "<p>free</p>"


def test_syntax_error_carries_its_line():
    version = email_version(subject="ok", html="<p>\n{% if customer.vip %}\n{{ customer.name ) }}")
    with pytest.raises(TemplateError) as error:
        render(version, context_for())
    assert error.value.field == "html"
    assert error.value.line == 3
    assert "unexpected ')'" in error.value.message


def test_published_versions_are_compiled_once_per_version():
    cache_clear()
    first = email_version(frozen=True, version_id=101, subject="A")
    second = email_version(frozen=True, version_id=102, subject="B")
    assert compiled_content(first, first.contents[0]) is compiled_content(first, first.contents[0])
    assert render(first, context_for()).subject == "A"
    assert render(second, context_for()).subject == "B"


def test_drafts_are_compiled_afresh_so_edits_show():
    draft = email_version(version_id=103, subject="A")
    assert compiled_content(draft, draft.contents[0]) is not compiled_content(
        draft, draft.contents[0]
    )


def test_an_error_in_a_body_inside_the_layout_is_reported_against_the_body():
    version = email_version(
        layout="base", html="<p>one</p>\n<p>two</p>\n{{ customer.traits.plan }}"
    )
    with pytest.raises(TemplateError) as error:
        render(version, context_for())
    assert (error.value.field, error.value.line) == ("html", 3)


def test_explicit_text_is_laid_out_too():
    version = email_version(layout="base", text="Hi {{ customer.name }} & co")
    context = context_for(traits={"name": "Ann"})
    context["links"] = {"unsubscribe": "https://j.test/u/abc"}
    message = render(version, context)
    assert message.text == "Hi Ann & co\n\n--\nUnsubscribe: https://j.test/u/abc"


def test_a_trait_named_like_a_dict_method_is_the_trait():
    version = VersionSource(
        id=None,
        channel="sms",
        default_locale="en",
        contents=(
            ContentSource("en", {"body": "{{ customer.traits.items }} {{ customer.values }}"}),
        ),
    )
    assert render(version, context_for(traits={"items": 3, "values": "kind"})).body == "3 kind"


def test_a_render_is_what_jinja_s_own_render_gives_globals_macros_and_loops_included():
    from campaigns.rendering.render import _render_template

    # given a template using globals (range, namespace), a macro, a loop and a filter
    html = (
        "{% macro hello(name) %}Hi {{ name|title }}{% endmacro %}"
        "{% set ns = namespace(total=0) %}"
        "{% for n in range(3) %}{% set ns.total = ns.total + n %}{% endfor %}"
        "<p>{{ hello(customer.first_name) }}: {{ ns.total }} {{ customer.email }}</p>"
    )
    version = email_version(html=html)
    context = context_for(traits={"first_name": "ada <b>"})
    template = compiled_content(version, version.contents[0]).full_html.template
    # when it is rendered twice (the merged globals kept the second time)
    first = _render_template(template, context)
    second = _render_template(template, context)
    # then both are Jinja's own render, escaping included
    assert first == second == template.render(context)
    assert "Hi Ada &lt;B&gt;: 3 ann@example.com" in first
