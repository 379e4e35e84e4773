"""Markdown to HTML for the family's cards: the subset `training/export.py` writes.

Headings, paragraphs, `-` lists, fenced code, inline code, bold, links and images.
Everything is HTML-escaped first, so a card can never inject markup; image sources go
through `image_url` (relative files become URLs the web page serves) and are lazy.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from markupsafe import Markup, escape

_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_SAFE_URL = re.compile(r"^(https?://|/)")


def _inline(text: str, image_url: Callable[[str], str | None]) -> str:
    """One line of text: code spans are left alone, the rest gets images, links, bold."""
    out = []
    for i, part in enumerate(text.split("`")):
        if i % 2:  # inside a code span
            out.append(f"<code>{escape(part)}</code>")
            continue
        html = str(escape(part))

        def image(m: re.Match[str]) -> str:
            src = image_url(m.group(2))
            if src is None:
                return ""
            return f'<img src="{escape(src)}" alt="{m.group(1)}" loading="lazy">'

        def link(m: re.Match[str]) -> str:
            url = m.group(2)
            if not _SAFE_URL.match(url):
                return str(m.group(1))
            return f'<a href="{url}" rel="nofollow noopener">{m.group(1)}</a>'

        html = _IMAGE.sub(image, html)
        html = _LINK.sub(link, html)
        out.append(_BOLD.sub(r"<strong>\1</strong>", html))
    return "".join(out)


def render(text: str, image_url: Callable[[str], str | None], *,
           heading_offset: int = 1) -> Markup:
    """HTML for `text`; `# Title` becomes <h{1 + heading_offset}> (the page has an <h1>)."""
    html: list[str] = []
    paragraph: list[str] = []
    in_list = False
    code: list[str] | None = None

    def flush() -> None:
        nonlocal in_list
        if paragraph:
            html.append(f"<p>{_inline(' '.join(paragraph), image_url)}</p>")
            paragraph.clear()
        if in_list:
            html.append("</ul>")
            in_list = False

    for line in text.splitlines():
        if code is not None:
            if line.startswith("```"):
                html.append(f"<pre><code>{escape(chr(10).join(code))}</code></pre>")
                code = None
            else:
                code.append(line)
            continue
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            code = []
        elif heading := re.match(r"^(#{1,6})\s+(.*)$", stripped):
            flush()
            level = min(6, len(heading.group(1)) + heading_offset)
            html.append(f"<h{level}>{_inline(heading.group(2), image_url)}</h{level}>")
        elif stripped.startswith(("- ", "* ")):
            if paragraph:
                flush()
            if not in_list:
                html.append("<ul>")
                in_list = True
            html.append(f"<li>{_inline(stripped[2:], image_url)}</li>")
        elif not stripped:
            flush()
        else:
            if in_list:
                flush()
            paragraph.append(stripped)
    if code is not None:  # an unclosed fence still shows its code
        html.append(f"<pre><code>{escape(chr(10).join(code))}</code></pre>")
    flush()
    return Markup("\n".join(html))
