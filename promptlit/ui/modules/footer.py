"""Footer: one status line for messages and errors (in plain words, never a traceback).

Every callback's last output is this line (see `promptlit.ui.modules.base.guard`).
"""

from __future__ import annotations

import gradio as gr

from promptlit.ui.modules import base

NAME = "footer"


def build(*, demo_mode: bool = False) -> gr.Markdown:
    """The status line component ("Loading…" until the page-load callback says "Ready.").

    Messages are plain text (they quote dataset names, example text and URL parameters): a
    `base.markdown` component shows them as typed, never as links, images or HTML.
    """
    del demo_mode  # the page load's message says it (see app.on_load)
    return base.markdown("Loading…", elem_id="pl-footer", elem_classes=["pl-footer"])
