"""What a stranger can put on the page: text from links, datasets and users stays text.

A share link is the public internet. Every Markdown line of the UI shows plain strings as inert
text (only Markdown the app builds with `render.md`, which escapes its arguments, is
formatted); checked here by rendering with a real CommonMark parser. The browser-level checks
(crafted links, an evil dataset) are in tests/e2e/test_security_e2e.py.
"""

import gradio as gr
import pytest
from markdown_it import MarkdownIt

from promptlit.ui import app, render
from promptlit.ui.modules import base

from .fakes import make_workbench

EVIL = ('<form action="https://e.vil/steal" id="evil-form"><input name="password" '
        'type="password"></form> [click me](https://e.vil/phish) ![x](https://e.vil/x.png) '
        '<img id="evil-img" src=x onerror="alert(1)"> https://e.vil/auto www.e.vil '
        'mail@e.vil **bold** _em_ `code` ~~gone~~ $x^2$ | a | b |\n# Heading\n- item')

_PARSER = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def rendered(markdown: str) -> str:
    """``markdown`` as HTML, the way a Markdown renderer with raw HTML enabled draws it."""
    return _PARSER.render(markdown)


def assert_inert(markdown: str) -> None:
    html = rendered(markdown)
    for tag in ("<form", "<input", "<a ", "<img", "<strong", "<em", "<code", "<s>", "<h1",
                "<li", "<table"):
        assert tag not in html, f"{tag} rendered from {markdown!r}: {html}"
    # No bare URL a linkifier (GFM autolinks) could turn into a link.
    for raw in ("https://", "www.e", "mail@"):
        assert raw not in markdown, f"{raw!r} left for a linkifier in {markdown!r}"
    assert "e.vil" in html  # the text is still there, as text


def test_escape_markdown_leaves_only_text():
    assert_inert(render.escape_markdown(EVIL))


def test_md_escapes_its_arguments_and_keeps_its_template():
    out = render.md("**{}** · {}", EVIL, 3)
    html = rendered(out)
    assert html.count("<strong>") == 1 and "<form" not in html and "<a " not in html
    assert_inert(render.md("{} · {x}", EVIL, x=EVIL))


def test_markdown_component_shows_plain_strings_as_text():
    comp = base.markdown("")
    assert_inert(comp.postprocess(EVIL))
    assert "<strong>" in rendered(comp.postprocess(render.md("**{}**", "ok")))


def test_every_markdown_line_of_the_app_escapes_plain_strings():
    # The header (page title, inline doc) is the operator's own text; everything else is fed
    # by callbacks that quote dataset text, names and URL parameters.
    demo = app.build_app(make_workbench())
    lines = [b for b in demo.blocks.values() if isinstance(b, gr.Markdown)]
    assert len(lines) > 10
    operator_text = [b for b in lines if "# promptlit" in str(b.value)]
    for block in lines:
        if block in operator_text:
            continue
        assert_inert(block.postprocess(EVIL))


def test_guard_messages_quote_user_text_as_text():
    @base.guard(1)
    def fails() -> str:
        raise KeyError(f"unknown dataset {EVIL!r} in the link")

    footer = base.markdown("")
    assert_inert(footer.postprocess(fails()))


@pytest.mark.parametrize("value", ["1. not a list", "- not a list", "> not a quote"])
def test_a_value_at_a_line_start_is_no_block(value):
    html = rendered(render.escape_markdown(value))
    assert "<ol" not in html and "<ul" not in html and "<blockquote" not in html
