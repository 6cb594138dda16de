"""A plain-text version of an email's HTML, for the text/plain part.

Paragraphs, headings and table rows become lines, lists get bullets, links keep their
address after the text, images their alt text; head, style, script and hidden elements
(the preheader) are left out.
"""

import re
from html.parser import HTMLParser

_BLOCK = {
    "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset",
    "figcaption", "figure", "footer", "form", "header", "hr", "main", "nav", "p", "pre",
    "section", "table", "tbody", "thead", "tfoot", "tr", "ul", "ol", "center",
}  # fmt: skip
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_SKIPPED = {"head", "style", "script", "title", "template", "noscript"}
_VOID = {
    "br",
    "hr",
    "img",
    "meta",
    "link",
    "input",
    "area",
    "base",
    "col",
    "embed",
    "source",
    "wbr",
}
_HIDDEN = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden|mso-hide\s*:\s*all", re.I)
_SPACES = re.compile(r"[ \t\r\n\f\u00a0]+")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skip_depth = 0
        self.pre_depth = 0
        self.open_tags: list[tuple[str, bool]] = []  # (tag, starts a skipped region)
        self.lists: list[list[int | None]] = []  # per open list: [counter or None]
        self.links: list[tuple[str, int]] = []  # (href, length of text before the link)

    # Lines and paragraphs -------------------------------------------------------------
    def _break(self, blank: bool = False) -> None:
        line = "".join(self.current).strip() if not self.pre_depth else "".join(self.current)
        self.current = []
        if line:
            self.lines.append(line)
        if blank and self.lines and self.lines[-1] != "":
            self.lines.append("")

    def _write(self, text: str) -> None:
        if self.skip_depth:
            return
        if not self.pre_depth:
            text = _SPACES.sub(" ", text)
            if not self.current or "".join(self.current).endswith(" "):
                text = text.lstrip(" ")
        self.current.append(text)

    # Parser callbacks ---------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        hidden = tag in _SKIPPED or bool(_HIDDEN.search(attributes.get("style") or ""))
        hidden = hidden or "hidden" in attributes
        if tag not in _VOID:
            self.open_tags.append((tag, hidden))
        if hidden:
            self.skip_depth += 1
            return
        if self.skip_depth:
            return
        if tag == "br":
            self._break()
        elif tag == "hr":
            self._break()
            self.lines.append("-" * 40)
        elif tag in _HEADINGS:
            self._break(blank=True)
        elif tag in ("ul", "ol"):
            self._break(blank=not self.lists)
            self.lists.append([0 if tag == "ol" else None])
        elif tag == "li":
            self._break()
            indent = "  " * max(len(self.lists) - 1, 0)
            if self.lists and self.lists[-1][0] is not None:
                self.lists[-1][0] += 1
                self.current.append(f"{indent}{self.lists[-1][0]}. ")
            else:
                self.current.append(f"{indent}- ")
        elif tag == "p":
            self._break(blank=True)
        elif tag in _BLOCK:
            self._break()
            if tag == "pre":
                self.pre_depth += 1
        elif tag in ("td", "th"):
            if self.current and not "".join(self.current).endswith(" "):
                self.current.append(" ")
        elif tag == "a":
            self.links.append((attributes.get("href") or "", len("".join(self.current))))
        elif tag == "img":
            alt = (attributes.get("alt") or "").strip()
            if alt:
                self._write(alt)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        # Close up to the matching open tag; stray end tags are ignored.
        for index in range(len(self.open_tags) - 1, -1, -1):
            if self.open_tags[index][0] == tag:
                break
        else:
            return
        for open_tag, hidden in reversed(self.open_tags[index:]):
            self._close(open_tag, hidden)
        del self.open_tags[index:]

    def _close(self, tag: str, hidden: bool) -> None:
        if hidden:
            self.skip_depth -= 1
            return
        if self.skip_depth:
            return
        if tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.current)[start:].strip()
            if _is_shown_link(href, label):
                self._write(f" ({href})" if label else href)
        elif tag in _HEADINGS or tag == "p":
            self._break(blank=True)
        elif tag in ("ul", "ol"):
            self._break(blank=len(self.lists) == 1)
            if self.lists:
                self.lists.pop()
        elif tag == "pre":
            self.pre_depth = max(self.pre_depth - 1, 0)
            self._break()
        elif tag in _BLOCK or tag == "li":
            self._break()

    def handle_data(self, data: str) -> None:
        self._write(data)

    def text(self) -> str:
        self._break()
        while self.lines and self.lines[-1] == "":
            self.lines.pop()
        return "\n".join(line.rstrip() for line in self.lines)


def _is_shown_link(href: str, label: str) -> bool:
    if not href or href.startswith("#") or href.lower().startswith("javascript:"):
        return False
    bare = href.removeprefix("mailto:").removeprefix("tel:")
    return label not in (href, bare)


def html_to_text(html: str) -> str:
    """Plain text for an HTML email body."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return parser.text()
