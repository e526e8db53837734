"""Footer: one status line for messages and errors (in plain words, never a traceback).

Every callback's last output is this line (see `promptlit.ui.modules.base.guard`).
"""

from __future__ import annotations

import gradio as gr

NAME = "footer"


def build(*, demo_mode: bool = False) -> gr.Markdown:
    """The status line component."""
    hint = "Demo mode (read-only). " if demo_mode else ""
    return gr.Markdown(f"{hint}Ready.", elem_id="pl-footer", elem_classes=["pl-footer"])
