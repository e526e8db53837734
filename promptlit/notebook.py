"""The workbench inline in a notebook (Jupyter, JupyterLab, VS Code, Colab).

A `Workbench` widget is built from the same ``models`` and ``datasets`` dicts as the server. Its
first `Workbench.render` starts the Gradio app on a free local port in a background thread and
shows it in the cell's output as an iframe; later renders reuse that server. ``render(data=...)``
puts the given examples in front (a dataset of their own, opened on its first example), as LIT's
``render(data=...)`` does. `Workbench.stop` frees the port. Several widgets can live in one
notebook: each has its own server.

Example (in a notebook cell):
    >>> import promptlit as pl                                                  # doctest: +SKIP
    >>> lm = pl.models.KerasCausalLM.from_preset("presets/tiny_lm")            # doctest: +SKIP
    >>> widget = pl.notebook.Workbench({"tiny": lm},                           # doctest: +SKIP
    ...                                {"sample_prompts": pl.data.load("sample_prompts")})
    >>> widget.render(height=700)                                              # doctest: +SKIP
    >>> widget.render(data=[{"prompt": "Name a fruit:"}])                      # doctest: +SKIP
    >>> widget.stop()                                                          # doctest: +SKIP

In Colab the page is served through Colab's kernel-port proxy (the iframe cannot reach the
kernel's 127.0.0.1 directly); everywhere else the iframe points at ``http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import dataclasses
import html
import sys
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from promptlit.api.dataset import Dataset
from promptlit.api.model import Model
from promptlit.api.types import JsonDict
from promptlit.lib.validation import DataError, validate_example

__all__ = ["Workbench", "RENDER_DATASET"]

#: The dataset that ``render(data=...)`` fills with the examples it is given.
RENDER_DATASET = "notebook_data"


def _display(obj: Any) -> None:
    try:
        from IPython.display import display
    except ImportError as e:  # pragma: no cover - IPython comes with every notebook kernel
        raise ImportError("promptlit.notebook needs IPython (pip install ipython); outside a "
                          "notebook use promptlit.serve(...) instead") from e
    display(obj)


class _Frame:
    """What `Workbench.render` displays: an iframe of the app (rich HTML in a notebook)."""

    def __init__(self, url: str, height: int) -> None:
        self.url, self.height = url, height

    def _repr_html_(self) -> str:
        src = html.escape(self.url, quote=True)
        return (f'<iframe class="promptlit-frame" src="{src}" width="100%" '
                f'height="{self.height}" frameborder="0" '
                'allow="clipboard-read; clipboard-write"></iframe>')

    def __repr__(self) -> str:
        return f"promptlit workbench at {self.url}"


class Workbench:
    """An inline promptlit workbench for notebooks.

    Args:
      models: name -> `promptlit.api.model.Model` (e.g. a `KerasCausalLM`).
      datasets: name -> `promptlit.api.dataset.Dataset`.
      height: default height of the inline frame, in pixels.
      host: where the server listens (loopback by default).
      page_title, layouts, default_layout, demo_mode: as for `promptlit.serve`.
      **workbench_kwargs: passed on to `promptlit.workbench.Workbench` (``cache_dir``,
        ``interpreters``, ``validate``, ...).

    Attributes:
      workbench: the `promptlit.workbench.Workbench` façade: call ``predict`` / ``salience`` on
        it directly in Python; the inline app shows the same (cached) results.
    """

    def __init__(self, models: Mapping[str, Model], datasets: Mapping[str, Dataset], *,
                 height: int = 800, host: str = "127.0.0.1", page_title: str = "promptlit",
                 layouts: Mapping[str, Any] | None = None, default_layout: str | None = None,
                 demo_mode: bool = False, **workbench_kwargs: Any) -> None:
        from promptlit.api import layout as layout_lib
        from promptlit.workbench import Workbench as Facade

        workbench_kwargs.setdefault("layouts", layout_lib.all_layouts())
        self.workbench = Facade(models, datasets, default_layout=default_layout,
                                **workbench_kwargs)
        self.height = int(height)
        self.host = host
        self._serve_kwargs: dict[str, Any] = {
            "page_title": page_title, "layouts": layouts, "default_layout": default_layout,
            "demo_mode": demo_mode}
        self._server: Any = None

    @property
    def url(self) -> str | None:
        """The local address of the running app (None before the first render / after stop)."""
        return self._server.local_url if self._server is not None else None

    def _ensure_server(self) -> Any:
        if self._server is None:
            from promptlit.server import serve

            self._server = serve(self.workbench, host=self.host, port=0,
                                 block=False, **self._serve_kwargs)
        return self._server

    def _put_in_front(self, data: Sequence[JsonDict]) -> str:
        """Makes ``data`` the `RENDER_DATASET` (spec from the first loaded dataset, else
        inferred) and returns its name. Invalid examples raise before anything changes."""
        rows = [dict(ex) for ex in data]
        if not rows:
            raise ValueError("render(data=...) got no examples; pass a list of dicts such as "
                             '[{"prompt": "..."}]')
        spec = next((dict(ds.spec()) for name, ds in self.workbench.datasets.items()
                     if name != RENDER_DATASET and all(k in ds.spec() for r in rows for k in r)),
                    None)
        if spec is not None:
            # The loaded dataset's field types; a field the given rows do not all have is optional.
            spec = {k: t if all(k in r for r in rows) else dataclasses.replace(t, required=False)
                    for k, t in spec.items()}
            problems = [p for i, ex in enumerate(rows)
                        for p in validate_example(ex, spec, index=i, source="render(data=...)")
                        if p.severity == "error"]
            if problems:
                raise DataError(problems)
        self.workbench.add_dataset(RENDER_DATASET, Dataset(rows, spec=spec,
                                                           source="notebook render(data=...)"))
        return RENDER_DATASET

    def render(self, height: int | None = None, data: Sequence[JsonDict] | None = None,
               layout: str | None = None, open_in_new_tab: bool = False,
               dataset: str | None = None, example: int | None = None) -> _Frame:
        """Shows the workbench in the cell output; returns the displayed frame (its ``.url``).

        Args:
          height: frame height in pixels (default: the widget's ``height``).
          data: examples to put in front: they become the ``notebook_data`` dataset and the
            app opens on the first one. Rendering again with other ``data`` replaces them.
          layout: the layout to open with (e.g. "lm", "default", "simple").
          open_in_new_tab: open the app in a new browser tab instead of inline.
          dataset, example: open on this dataset / example index (ignored with ``data``).
        """
        server = self._ensure_server()
        params: dict[str, Any] = {}
        if data is not None:
            params["dataset"], params["example"] = self._put_in_front(data), 0
        else:
            if dataset is not None:
                self.workbench._dataset(dataset)  # unknown names fail here, with the list
                params["dataset"] = dataset
            if example is not None:
                params["example"] = int(example)
        if layout is not None:
            params["layout"] = layout
        query = urllib.parse.urlencode(params)
        frame = _Frame(server.local_url + (f"?{query}" if query else ""),
                       int(height or self.height))
        if "google.colab" in sys.modules:  # pragma: no cover - only inside Colab
            from google.colab import output

            port = int(urllib.parse.urlsplit(server.local_url).port or 0)
            path = "/" + (f"?{query}" if query else "")
            if open_in_new_tab:
                output.serve_kernel_port_as_window(port, path=path)
            else:
                output.serve_kernel_port_as_iframe(port, path=path, height=frame.height)
            return frame
        if open_in_new_tab:
            from IPython.display import Javascript

            _display(Javascript(f"window.open({frame.url!r}, '_blank')"))
        else:
            _display(frame)
        return frame

    def stop(self) -> None:
        """Stops this widget's server (a later `render` starts a new one)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __repr__(self) -> str:
        where = self.url or "not rendered yet"
        return f"promptlit.notebook.Workbench({self.workbench!r}, {where})"
