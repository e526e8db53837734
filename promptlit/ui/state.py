"""Per-session UI state and its URL query-parameter form.

Each browser session gets its own `SessionState` inside a ``gr.State`` (Gradio deep-copies the
initial value per session), so two people using one server never see each other's selection,
slices or added examples. Nothing here is a module global.

Example:
    >>> s = SessionState(dataset="sample_prompts", model="tiny", layout="lm")
    >>> s.select_token(3)
    (3, 4)
    >>> s.select_token(5, extend=True)
    (3, 6)
    >>> q = to_query(s, example_index=2)
    >>> q
    {'dataset': 'sample_prompts', 'model': 'tiny', 'example': '2', 'layout': 'lm', 'granularity': 'words'}
    >>> from_query(q)["example"]
    2
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from promptlit.salience.aggregation import GRANULARITIES

__all__ = [
    "METHODS",
    "METHOD_LABELS",
    "QUERY_KEYS",
    "SessionState",
    "from_query",
    "link",
    "to_query",
]

JsonDict = dict[str, Any]

METHODS: tuple[str, ...] = ("grad_l2", "grad_dot_input", "integrated_gradients")
"""Salience methods the UI offers, in order."""

METHOD_LABELS: dict[str, str] = {
    "grad_l2": "Grad L2",
    "grad_dot_input": "Grad·Input",
    "integrated_gradients": "Integrated Gradients",
}
"""Method name -> label shown in the UI."""

QUERY_KEYS: tuple[str, ...] = ("dataset", "model", "example", "layout", "granularity")

LINK_GRANULARITIES: tuple[str, ...] = (*GRANULARITIES, "few-shot")
"""Granularities a link may restore: the built-in ones and the few-shot blocks (the other custom
ones need a separator or the example's own segments, which a link does not carry)."""
"""The URL query parameters the app reads and writes."""


@dataclasses.dataclass
class SessionState:
    """Everything one browser session has chosen.

    Attributes:
      dataset, model, layout: current pickers. ``compare_model``: an optional second model.
      selected_ids: example ids selected in the data table (many), ``primary_id`` the one shown
        in the editor and salience module.
      span: the selected response-token span ``[start, stop)``; ``anchor`` the token a
        shift-click extends from.
      granularity, method, ig_steps, intensity: salience view settings; ``explain_target``
        "response" (the model's generation) or "target" (the example's reference);
        ``target_granularity`` how the response is split for picking a target segment;
        ``show_matrix`` whether the target×source matrix is drawn.
      slices: slice name -> example ids.
      added: dataset name -> examples added in this session (never shared with other sessions).
      filtered_ids: ids the data table currently shows (after search / filter / sort), in order.
      page_ids: the ids on the visible page, in row order (maps a row click to an id).
      explained: whether salience was computed for ``primary_id`` (so clicks re-render).
      table_query: the data table's search / filter / sort / page settings.
      errors: problems met while redrawing modules in the current callback (shown in the
        footer, then cleared).
      views: module name -> that module's own per-session settings and results (e.g. the
        counterfactuals it generated, the projection it shows).
    """

    dataset: str = ""
    model: str = ""
    compare_model: str | None = None
    layout: str = "lm"
    selected_ids: list[str] = dataclasses.field(default_factory=list)
    primary_id: str | None = None
    span: tuple[int, int] | None = None
    anchor: int | None = None
    granularity: str = "words"
    method: str = "grad_l2"
    ig_steps: int = 16
    intensity: float = 1.0
    explain_target: str = "response"
    target_granularity: str = "words"
    show_matrix: bool = False
    slices: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    added: dict[str, list[JsonDict]] = dataclasses.field(default_factory=dict)
    filtered_ids: list[str] = dataclasses.field(default_factory=list)
    page_ids: list[str] = dataclasses.field(default_factory=list)
    explained: bool = False
    table_query: dict[str, Any] = dataclasses.field(default_factory=dict)
    errors: list[str] = dataclasses.field(default_factory=list)
    thresholds: dict[str, float] = dataclasses.field(default_factory=dict)
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    views: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    # -- selection ---------------------------------------------------------------------------
    def select_example(self, example_id: str, *, add: bool = False) -> None:
        """Makes ``example_id`` primary; with ``add`` keeps (or toggles into) a multi-selection."""
        if add:
            if example_id in self.selected_ids and example_id != self.primary_id:
                self.selected_ids.remove(example_id)
                return
            if example_id not in self.selected_ids:
                self.selected_ids.append(example_id)
        else:
            self.selected_ids = [example_id]
        if self.primary_id != example_id:
            self.span, self.anchor, self.explained = None, None, False
        self.primary_id = example_id

    def select_examples(self, ids: Sequence[str]) -> None:
        """Selects exactly ``ids`` (in order, duplicates dropped). The primary example stays when
        it is among them; otherwise the first becomes primary (and the token span resets)."""
        chosen = list(dict.fromkeys(ids))
        if not chosen:
            raise ValueError("select_examples: no example ids to select")
        if self.primary_id not in chosen:
            self.select_example(chosen[0])
        self.selected_ids = chosen

    def select_token(self, index: int, *, extend: bool = False) -> tuple[int, int]:
        """Selects response token ``index``; ``extend`` (shift-click) spans from the anchor.

        Returns the new span ``[start, stop)``.
        """
        index = int(index)
        if index < 0:
            raise ValueError(f"response token index must be >= 0, got {index}")
        if extend and self.anchor is not None:
            lo, hi = sorted((self.anchor, index))
            self.span = (lo, hi + 1)
        else:
            self.anchor = index
            self.span = (index, index + 1)
        return self.span

    def set_span(self, start: int, stop: int) -> tuple[int, int]:
        """Selects the response-token span ``[start, stop)`` (e.g. a whole word or sentence)."""
        start, stop = int(start), int(stop)
        if not 0 <= start < stop:
            raise ValueError(f"bad response span [{start}, {stop}): need 0 <= start < stop")
        self.span, self.anchor = (start, stop), start
        return self.span

    def session_examples(self, dataset: str | None = None) -> list[JsonDict]:
        """The examples added in this session to ``dataset`` (default: the current one)."""
        return self.added.get(dataset or self.dataset, [])


def to_query(state: SessionState, *, example_index: int | None = None) -> dict[str, str]:
    """The URL query parameters (`QUERY_KEYS`) for the session: what a shared link restores."""
    q = {"dataset": state.dataset, "model": state.model}
    if example_index is not None:
        q["example"] = str(int(example_index))
    q["layout"] = state.layout
    q["granularity"] = state.granularity
    return {k: v for k, v in q.items() if v}


def from_query(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parses query parameters into ``{key: value}`` for the known `QUERY_KEYS` only.

    ``example`` becomes an int (an index into the dataset) when it is all digits, else it stays
    a string (an example id). An unknown granularity is dropped (the app keeps its default).
    """
    out: dict[str, Any] = {}
    for key in QUERY_KEYS:
        value = params.get(key)
        if isinstance(value, list | tuple):
            value = value[0] if value else None
        if value is None or str(value).strip() == "":
            continue
        value = str(value).strip()
        if key == "example":
            out[key] = int(value) if value.isdigit() else value
        elif key == "granularity":
            if value in LINK_GRANULARITIES:
                out[key] = value
        else:
            out[key] = value
    return out


def link(base_url: str, state: SessionState, *, example_index: int | None = None) -> str:
    """``base_url`` with the session's query parameters, e.g. for a "copy link" button."""
    base = base_url.split("?", 1)[0]
    return base + "?" + urllib.parse.urlencode(to_query(state, example_index=example_index))
