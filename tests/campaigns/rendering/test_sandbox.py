"""Marketers' templates cannot reach outside the data they are given."""

import datetime as dt

import pytest

from campaigns.rendering import ContentSource, TemplateError, VersionSource, build_context, render

NOW = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)


def render_body(source: str, **traits) -> str:
    version = VersionSource(
        id=None,
        channel="sms",
        default_locale="en",
        contents=(ContentSource("en", {"body": source}),),
    )
    context = build_context(customer={"id": 1, "traits": traits}, now=NOW)
    return render(version, context).body


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__.os }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ customer.__class__ }}",
        "{{ now.__class__.__init__ }}",
        "{{ self._TemplateReference__context }}",
        "{{ ''.format.__globals__ }}",
        "{{ (''|attr('__class__')) }}",
        "{{ customer.traits.update({'x': 1}) }}",
        "{{ segments.append('vip') }}",
        "{{ range(10000000)|list|length }}",
        "{% for i in range(2000) %}{% endfor %}",
        "{{ 'x' * 100000000 }}",
        "{{ [1] * 100000000 }}",
        "{{ 10 ** 100000000 }}",
        "{{ '{0.__class__}'.format('') }}",
        "{{ lipsum() }}",
        "{% include '/etc/passwd' %}",
        "{% include '../../config/settings/base.py' %}",
        "{% macro loop() %}{{ loop() }}{% endmacro %}{{ loop() }}",
        "{{ now.replace(year=0) }}",
    ],
)
def test_escape_attempt_fails_with_a_template_error(source):
    with pytest.raises(TemplateError) as error:
        render_body(source)
    assert error.value.field == "body"
    assert error.value.line == 1


def test_a_sandbox_violation_says_it_is_not_allowed():
    with pytest.raises(TemplateError) as error:
        render_body("line one\n{{ ''.__class__ }}")
    assert error.value.line == 2
    assert error.value.message.startswith("not allowed:")


def test_private_attributes_are_refused():
    with pytest.raises(TemplateError):
        render_body("{{ now._private }}")


def test_reasonable_loops_and_repetition_still_work():
    assert render_body("{% for i in range(3) %}{{ i }}{% endfor %}{{ '-' * 3 }}") == "012---"
    assert render_body("{{ 2 ** 10 }}") == "1024"
