"""Toolbar: dataset, model(s) and layout pickers, what is loaded, and a "copy link" button.

Picking two models compares them: the salience module shows the second model's response and
salience under the first's. The link encodes dataset, model, example, layout and granularity
as URL query parameters (`promptlit.ui.state.to_query`), so a shared link reopens the same view.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from typing import Any

import gradio as gr

from promptlit.ui import render
from promptlit.ui.modules import base
from promptlit.ui.state import SessionState, to_query

NAME = "toolbar"

# Builds the absolute link in the browser (the server does not know its public address) and
# copies it to the clipboard when allowed.
COPY_LINK_JS = """
(query) => {
  const url = window.location.origin + window.location.pathname + (query ? '?' + query : '');
  try { navigator.clipboard.writeText(url); } catch (e) {}
  return url;
}
"""


@dataclasses.dataclass
class Toolbar:
    """The toolbar's components (the app wires dataset / model / layout changes)."""

    container: Any
    dataset: Any
    models: Any
    layout: Any
    info: Any
    query: Any
    link: Any
    copy: Any


def loaded_info(wb: Any, state: SessionState) -> str:
    """One line: the dataset's size, the models and which can explain responses."""
    n = len(base.dataset_rows(wb, state))
    added = len(state.session_examples())
    lm = base.lm_models(wb)
    models = ", ".join(f"{m}{' (salience)' if m in lm else ''}" for m in wb.models)
    extra = f" (+{added} added this session)" if added else ""
    return render.md("**{}**: {} examples{} · models: {} · layout **{}**",
                     state.dataset or "—", n, extra, models or "—", state.layout)


def query_string(wb: Any, state: SessionState) -> str:
    """URL query for the session (dataset, model, example index, layout, granularity)."""
    return urllib.parse.urlencode(to_query(state,
                                           example_index=base.index_of(wb, state,
                                                                       state.primary_id)))


def build(wb: Any, state: SessionState, layouts: list[str], *, hide: bool = False) -> Toolbar:
    """Draws the toolbar with the session's initial choices."""
    with gr.Row(elem_id="pl-toolbar", visible=True, equal_height=True) as container:
        dataset = gr.Dropdown(list(wb.datasets), value=state.dataset or None, label="Dataset",
                              scale=2, elem_id="pl-dataset")
        models = gr.Dropdown(list(wb.models),
                             value=[m for m in (state.model, state.compare_model) if m],
                             multiselect=True, max_choices=2, label="Model(s) (two to compare)",
                             scale=2, elem_id="pl-models")
        layout = gr.Dropdown(layouts, value=state.layout, label="Layout", scale=1,
                             elem_id="pl-layout")
        with gr.Column(scale=3):
            info = base.markdown(loaded_info(wb, state), elem_id="pl-info")
            with gr.Row():
                query = gr.Textbox(visible=False, value=query_string(wb, state))
                link = gr.Textbox(show_label=False, placeholder="link to this view", scale=4,
                                  elem_id="pl-link", interactive=False)
                copy = gr.Button("Copy link", size="sm", scale=1, elem_id="pl-copy-link")
    copy.click(None, [query], [link], js=COPY_LINK_JS, api_visibility="private")
    del hide
    return Toolbar(container, dataset, models, layout, info, query, link, copy)


def refresh(wb: Any, state: SessionState) -> list[Any]:
    """Updates for ``[info, query]`` after a selection change."""
    return [loaded_info(wb, state), query_string(wb, state)]
