"""Data table: search, filter by field or slice, sort and page the examples; select one or many.

Filtering, sorting and paging run on the server over the full dataset (plus this session's
added examples), and only the visible page is sent to the browser, so thousands of rows stay
fast. Clicking a row selects it (and redraws the other modules); with "multi-select" on, clicks
add or remove rows from the selection instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gradio as gr
import pandas as pd

from promptlit.ui.modules import base
from promptlit.ui.state import SessionState

NAME = "data_table"
DEFAULT_PAGE_SIZE = 25
_ANY = "(any field)"
_NO_SLICE = "(all examples)"


def filter_rows(rows: Sequence[tuple[str, dict, bool]], *, search: str = "", field: str = "",
                value: str = "", slice_ids: Sequence[str] | None = None, sort: str = "",
                descending: bool = False) -> list[tuple[str, dict, bool]]:
    """Rows matching the query, sorted.

    Args:
      rows: ``(id, example, added)`` in dataset order.
      search: case-insensitive substring over every field (or only ``field`` if given).
      field, value: keep rows whose ``field`` contains ``value`` (case-insensitive); an empty
        ``value`` keeps all rows.
      slice_ids: keep only these ids (a slice), or None for all.
      sort: a field name to sort by ("" keeps dataset order); numbers sort numerically.
      descending: reverse the sort.
    """
    out = list(rows)
    if slice_ids is not None:
        keep = set(slice_ids)
        out = [r for r in out if r[0] in keep]
    field = "" if field == _ANY else field
    if value:
        v = value.lower()
        out = [r for r in out if field and v in str(r[1].get(field, "")).lower()]
    if search:
        s = search.lower()

        def hit(ex: dict) -> bool:
            if field:
                return s in str(ex.get(field, "")).lower()
            return any(s in str(x).lower() for k, x in ex.items() if not str(k).startswith("_"))

        out = [r for r in out if hit(r[1]) or s in r[0]]
    if sort:
        def key(r: tuple[str, dict, bool]) -> tuple[int, Any]:
            x = r[1].get(sort)
            if isinstance(x, int | float) and not isinstance(x, bool):
                return (0, x)
            return (1, str(x if x is not None else ""))

        out.sort(key=key, reverse=bool(descending))
    return out


def page_frame(rows: Sequence[tuple[str, dict, bool]], fields: Sequence[str], *, page: int,
               page_size: int, selected: Sequence[str] = (), numbers: dict[str, int] | None = None
               ) -> tuple[pd.DataFrame, list[str], int]:
    """One page of rows as a DataFrame: ``#``, ``sel``, the fields (shortened), ``added``.

    Returns ``(frame, ids on the page, number of pages)``; ``page`` is 1-based and clamped.
    """
    page_size = max(int(page_size), 1)
    pages = max(math.ceil(len(rows) / page_size), 1)
    page = min(max(int(page), 1), pages)
    chunk = rows[(page - 1) * page_size: page * page_size]
    numbers = numbers or {}
    sel = set(selected)
    records = []
    for i, ex, added in chunk:
        rec: dict[str, Any] = {"#": numbers.get(i, -1), "sel": "✓" if i in sel else ""}
        for f in fields:
            rec[f] = base.short_middle(ex.get(f, ""), 90)
        rec["added"] = "session" if added else ""
        rec["id"] = i[:10]
        records.append(rec)
    frame = pd.DataFrame(records, columns=["#", "sel", *fields, "added", "id"])
    return frame, [r[0] for r in chunk], pages


def build(ctx: base.Context) -> base.Module:
    """Draws the data table and wires search, filter, sort, paging and row selection."""
    wb = ctx.workbench
    with gr.Column(elem_id="pl-data-table") as container:
        with gr.Row():
            search = gr.Textbox(label="Search", placeholder="text in any field", scale=3,
                                elem_id="pl-search")
            field = gr.Dropdown(label="Field", choices=[_ANY], value=_ANY, scale=2)
            value = gr.Textbox(label="Field contains", scale=2)
        with gr.Row():
            slice_dd = gr.Dropdown(label="Slice", choices=[_NO_SLICE], value=_NO_SLICE, scale=2,
                                   elem_id="pl-slice-filter")
            sort = gr.Dropdown(label="Sort by", choices=[""], value="", scale=2)
            descending = gr.Checkbox(label="Descending", value=False, scale=1)
            multi = gr.Checkbox(label="Multi-select", value=False, scale=1,
                                elem_id="pl-multi-select")
        fields0 = base.spec_fields(wb, ctx.state.value.dataset)
        widths: list[str | int] = [
            "44px", "44px", *(("320px" if f == "prompt" else "200px") for f in fields0),
            "70px", "90px"]
        table = gr.Dataframe(interactive=False, wrap=True, max_height=420, column_widths=widths,
                             elem_id="pl-table", label="Examples (click a row to select)")
        with gr.Row():
            prev_btn = gr.Button("◀ Prev", size="sm", scale=1)
            page = gr.Number(label="Page", value=1, precision=0, minimum=1, scale=1)
            next_btn = gr.Button("Next ▶", size="sm", scale=1)
            page_size = gr.Dropdown(label="Rows per page", choices=[10, 25, 50, 100],
                                    value=DEFAULT_PAGE_SIZE, scale=1)
            select_all = gr.Button("Select all shown by the filter", size="sm", scale=2)
        info = base.markdown("", elem_id="pl-table-info")

    query_inputs = [search, field, value, slice_dd, sort, descending, page, page_size]

    def view(state: SessionState) -> list[Any]:
        q = state.table_query
        fields = base.spec_fields(wb, state.dataset)
        all_rows = base.dataset_rows(wb, state)
        numbers = {r[0]: n for n, r in enumerate(all_rows)}
        slice_name = q.get("slice", _NO_SLICE)
        # "pinned": ids another module asked the table to list (e.g. a confusion-matrix cell).
        pinned = q.get("pinned") or {}
        if slice_name == pinned.get("label"):
            slice_ids = pinned.get("ids", [])
        else:
            slice_ids = state.slices.get(slice_name) if slice_name != _NO_SLICE else None
        rows = filter_rows(all_rows, search=q.get("search", ""), field=q.get("field", ""),
                           value=q.get("value", ""), slice_ids=slice_ids,
                           sort=q.get("sort", ""), descending=q.get("descending", False))
        state.filtered_ids = [r[0] for r in rows]
        frame, ids, pages = page_frame(rows, fields, page=q.get("page", 1),
                                       page_size=q.get("page_size", DEFAULT_PAGE_SIZE),
                                       selected=state.selected_ids, numbers=numbers)
        state.page_ids = ids
        current = min(max(int(q.get("page", 1)), 1), pages)
        q["page"] = current
        n_sel = len(state.selected_ids)
        text = (f"{len(rows)} of {len(all_rows)} examples match · page {current}/{pages} · "
                f"{n_sel} selected")
        return [
            gr.update(value=frame),
            gr.update(value=current),
            text,
            gr.update(choices=[_ANY, *fields], value=q.get("field") or _ANY),
            gr.update(choices=["", *fields], value=q.get("sort", "")),
            gr.update(choices=[_NO_SLICE, *([pinned["label"]] if pinned else []),
                               *state.slices],
                      value=slice_name if slice_name in state.slices
                      or slice_name == pinned.get("label") else _NO_SLICE),
        ]

    view_outputs = [table, page, info, field, sort, slice_dd]

    def refresh(_wb: Any, state: SessionState) -> list[Any]:
        return view(state)

    @base.guard(len(view_outputs) + 2)
    def on_query(state: SessionState, s: str, f: str, v: str, sl: str, so: str, desc: bool,
                 pg: float, ps: int, *, reset_page: bool = True) -> Any:
        state.table_query.update(search=s or "", field="" if f == _ANY else (f or ""),
                                 value=v or "", slice=sl or _NO_SLICE, sort=so or "",
                                 descending=bool(desc), page=1 if reset_page else int(pg or 1),
                                 page_size=int(ps or DEFAULT_PAGE_SIZE))
        return (state, *view(state), "")

    def wire(ctx: base.Context) -> None:
        # Searching, filtering and paging call no model: they run concurrently
        # (concurrency_limit=None) instead of queueing behind other sessions' requests.
        outs = [ctx.state, *view_outputs, ctx.footer]
        for comp in (search, value):
            comp.submit(on_query, [ctx.state, *query_inputs], outs, api_visibility="private",
                        concurrency_limit=None)
        for control in (field, slice_dd, sort, descending, page_size):
            control.input(on_query, [ctx.state, *query_inputs], outs, api_visibility="private",
                          concurrency_limit=None)

        def keep_page(*a: Any) -> Any:
            return on_query(*a, reset_page=False)

        page.submit(keep_page, [ctx.state, *query_inputs], outs, api_visibility="private",
                    concurrency_limit=None)

        @base.guard(len(view_outputs) + 2)
        def step(state: SessionState, delta: int) -> Any:
            state.table_query["page"] = int(state.table_query.get("page", 1)) + delta
            return (state, *view(state), "")

        prev_btn.click(lambda st: step(st, -1), [ctx.state], outs, api_visibility="private",
                       concurrency_limit=None)
        next_btn.click(lambda st: step(st, +1), [ctx.state], outs, api_visibility="private",
                       concurrency_limit=None)

        refresh_outs = ctx.refresh_outputs()

        @base.guard(2 + len(refresh_outs))
        def on_select(state: SessionState, is_multi: bool, evt: gr.SelectData) -> Any:
            row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
            if row is None or not 0 <= int(row) < len(state.page_ids):
                raise IndexError(f"row {row} is not on this page; refresh the table")
            ex_id = state.page_ids[int(row)]
            state.select_example(ex_id, add=bool(is_multi))
            n = base.index_of(wb, state, state.primary_id)
            return (state, *ctx.refresh(state), base.ok(f"selected example #{n}"))

        table.select(on_select, [ctx.state, multi], [ctx.state, *refresh_outs, ctx.footer],
                     api_visibility="private")

        @base.guard(2 + len(refresh_outs))
        def on_select_all(state: SessionState) -> Any:
            if not state.filtered_ids:
                raise ValueError("no examples match the filter; nothing to select")
            state.select_examples(state.filtered_ids)
            return (state, *ctx.refresh(state),
                    base.ok(f"selected {len(state.selected_ids)} examples"))

        select_all.click(on_select_all, [ctx.state], [ctx.state, *refresh_outs, ctx.footer],
                         api_visibility="private")

    return ctx.register(base.Module(NAME, container, view_outputs, refresh, wire))
