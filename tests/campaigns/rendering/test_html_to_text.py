from hypothesis import given
from hypothesis import strategies as st

from campaigns.rendering.html_to_text import html_to_text


def test_structure_becomes_lines():
    html = (
        "<html><head><title>T</title><style>p {color: red}</style></head><body>"
        '<div style="display:none">preheader</div>'
        "<h1>Welcome,   Ann</h1><p>First&nbsp;line<br>second line</p>"
        "<ol><li>one</li><li>two</li></ol>"
        "<table><tr><td>Hat</td><td>€5</td></tr><tr><td>Cap</td><td>€7</td></tr></table>"
        '<p><a href="https://x.test/a">Open</a> or <a href="https://x.test/b">https://x.test/b</a>'
        ' <img src="logo.png" alt="Logo"></p><script>alert(1)</script></body></html>'
    )
    assert html_to_text(html) == (
        "Welcome, Ann\n\nFirst line\nsecond line\n\n1. one\n2. two\n\nHat €5\nCap €7\n\n"
        "Open (https://x.test/a) or https://x.test/b Logo"
    )


def test_entities_are_decoded():
    assert html_to_text("<p>Fish &amp; chips &lt;3</p>") == "Fish & chips <3"


@given(st.text())
def test_any_input_gives_text_without_crashing(text):
    assert isinstance(html_to_text(text), str)
