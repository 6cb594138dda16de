"""Which links a version's templates read: dispatch signs only those."""

import pytest

from campaigns.rendering import ContentSource, VersionSource
from campaigns.rendering.render import cache_clear, links_used


def email_version(html: str, *, layout: str = "", subject: str = "Hi", version_id=None):
    fields = {"subject": subject, "html": html, "text": "", "layout": layout}
    return VersionSource(
        id=version_id,
        channel="email",
        default_locale="en",
        contents=(ContentSource("en", fields),),
        frozen=version_id is not None,
    )


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>Hello {{ customer.first_name }}</p>", frozenset()),
        ('<a href="{{ links.preferences }}">prefs</a>', frozenset({"preferences"})),
        ("{{ links['unsubscribe'] }}", frozenset({"unsubscribe"})),
        (
            "{% if links is defined and links.view_in_browser is defined %}"
            "{{ links.view_in_browser }}{% endif %}",
            frozenset({"view_in_browser"}),
        ),
        ("{% for name in links %}{{ name }}{% endfor %}", None),
        ("{{ links|attr('preferences') }}", None),
        ("{% set all = links %}{{ all.preferences }}", None),
        ("{{ links.preferences ", None),  # a syntax error: the render will say so
    ],
)
def test_the_links_a_template_reads(html, expected):
    # given a version with this HTML, when asked which links it reads, then
    assert links_used(email_version(html)) == expected


def test_the_layout_and_every_field_count():
    # given a body without links in a layout that shows unsubscribe, preferences and
    # view-in-browser links, and a subject that shows one more
    version = email_version("<p>Hi</p>", layout="base", subject="{{ links.special|default('') }}")
    # then all of them are read
    assert links_used(version) == {"unsubscribe", "preferences", "view_in_browser", "special"}


def test_published_versions_are_analysed_once():
    # given a published version analysed once
    cache_clear()
    first = email_version("{{ links.preferences }}", version_id=991)
    assert links_used(first) == {"preferences"}
    # when a (never possible) different content comes under the same published id
    # then the cached answer is used: published versions never change
    assert links_used(email_version("<p>none</p>", version_id=991)) == {"preferences"}
    cache_clear()
    assert links_used(email_version("<p>none</p>", version_id=991)) == frozenset()
