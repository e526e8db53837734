"""Footer: one status line for messages and errors (in plain words, never a traceback).

Every callback's last output is this line (see `promptlit.ui.modules.base.guard`).
"""

from __future__ import annotations

import gradio as gr

NAME = "footer"


def build(*, demo_mode: bool = False) -> gr.Markdown:
    """The status line component ("Loading…" until the page-load callback says "Ready.")."""
    del demo_mode  # the page load's message says it (see app.on_load)
    return gr.Markdown("Loading…", elem_id="pl-footer", elem_classes=["pl-footer"])
