"""LIT-style page layouts: which UI modules go where, by tab.

A `LayoutSpec` has three areas, `left`, `upper` and `lower`, each a dict of tab name -> list of
module names (`"data_table"`, `"lm_salience"`, ...). Module names are checked against the known
modules (`MODULES`, extendable with `register_module`), so a typo fails early with the list of
valid names.

Example:
    >>> mine = LayoutSpec(left={"Data": ["data_table"]}, upper={"Salience": ["lm_salience"]},
    ...                   description="Just salience.")
    >>> layouts = merge_layouts({"mine": mine})
    >>> sorted(layouts)
    ['classification', 'default', 'lm', 'mine', 'simple']
    >>> LayoutSpec.from_json(mine.to_json()) == mine
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

JsonDict = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class ModuleConfig:
    """A UI module the layouts can place: its name, a title and a one-line description."""

    module: str
    title: str = ""
    description: str = ""


MODULES: dict[str, ModuleConfig] = {
    m.module: m
    for m in [
        ModuleConfig("data_table", "Data Table", "Browse, search and select examples."),
        ModuleConfig("datapoint_editor", "Datapoint Editor", "Edit the selected example."),
        ModuleConfig("lm_salience", "Sequence Salience", "Why the LM wrote its response."),
        ModuleConfig("prompt_compare", "Compare Prompts",
                     "Two versions of a prompt side by side: what changed in their salience."),
        ModuleConfig("generated_text", "Generated Text", "Model responses vs. targets."),
        ModuleConfig("slice_editor", "Slices", "Save and select named groups of examples."),
        ModuleConfig("metrics", "Metrics", "Aggregate metrics per model and slice."),
        ModuleConfig("confusion_matrix", "Confusion Matrix", "Labels vs. predicted classes."),
        ModuleConfig("classification_results", "Classification", "Class scores per example."),
        ModuleConfig("regression_results", "Regression", "Scores and errors per example."),
        ModuleConfig("scalars", "Scalars", "Predicted scores plotted per example."),
        ModuleConfig("salience_maps", "Salience Maps", "Token salience from interpreters."),
        ModuleConfig("embeddings", "Embeddings", "2-D projections of embeddings."),
        ModuleConfig("counterfactuals", "Counterfactuals", "Generate perturbed examples."),
        ModuleConfig("pdp", "Partial Dependence", "How predictions vary with one feature."),
        ModuleConfig("curves", "Curves", "PR / ROC curves."),
        ModuleConfig("threshold", "Threshold", "Tune binary decision thresholds."),
        ModuleConfig("footer", "Status", "Messages and errors."),
    ]
}


def register_module(config: ModuleConfig) -> None:
    """Makes a new module name valid in layouts (e.g. a plugin's UI module)."""
    MODULES[config.module] = config


def _check_modules(area: str, tabs: Any) -> dict[str, list[str]]:
    """Normalizes an area to {tab: [module names]} and rejects unknown modules."""
    if not isinstance(tabs, Mapping):
        raise TypeError(
            f"LayoutSpec.{area} must be a dict of tab name -> list of module names, "
            f"got {type(tabs).__name__}."
        )
    out: dict[str, list[str]] = {}
    for tab, modules in tabs.items():
        if not isinstance(tab, str) or not tab:
            raise ValueError(
                f"LayoutSpec.{area}: tab names must be non-empty strings, got {tab!r}."
            )
        if isinstance(modules, (str, ModuleConfig)) or not isinstance(modules, Sequence):
            raise TypeError(
                f"LayoutSpec.{area}[{tab!r}] must be a list of module names, got {modules!r}."
            )
        names = [m.module if isinstance(m, ModuleConfig) else m for m in modules]
        unknown = [n for n in names if n not in MODULES]
        if unknown:
            raise ValueError(
                f"LayoutSpec.{area}[{tab!r}]: unknown module(s) {unknown}. "
                f"Known modules: {', '.join(sorted(MODULES))}. "
                "Fix the name, or register a new module with layout.register_module()."
            )
        out[tab] = names
    return out


@dataclasses.dataclass(frozen=True)
class LayoutSettings:
    """Page-level options, as in LIT."""

    hide_toolbar: bool = False
    main_height: int = 45  # height of the upper area, in % of the page
    center_page: bool = False


@dataclasses.dataclass(frozen=True)
class LayoutSpec:
    """Where each module goes: `left`, `upper` and `lower` areas of tab name -> module names."""

    left: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    upper: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    lower: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    layout_settings: LayoutSettings = dataclasses.field(default_factory=LayoutSettings)
    description: str = ""

    def __post_init__(self) -> None:
        for area in ("left", "upper", "lower"):
            object.__setattr__(self, area, _check_modules(area, getattr(self, area)))
        settings = self.layout_settings
        if isinstance(settings, Mapping):
            try:
                settings = LayoutSettings(**settings)
            except TypeError as e:
                fields = [f.name for f in dataclasses.fields(LayoutSettings)]
                raise TypeError(f"layout_settings: {e}; valid keys: {fields}.") from e
        if not isinstance(settings, LayoutSettings):
            raise TypeError(f"layout_settings must be a LayoutSettings or dict, got {settings!r}.")
        object.__setattr__(self, "layout_settings", settings)

    def modules(self) -> list[str]:
        """Every module name in the layout, in page order (left, upper, lower), no repeats."""
        seen: dict[str, None] = {}
        for area in (self.left, self.upper, self.lower):
            for names in area.values():
                seen.update(dict.fromkeys(names))
        return list(seen)

    def to_json(self) -> JsonDict:
        """A JSON-serializable dict."""
        return {
            "left": {k: list(v) for k, v in self.left.items()},
            "upper": {k: list(v) for k, v in self.upper.items()},
            "lower": {k: list(v) for k, v in self.lower.items()},
            "layout_settings": dataclasses.asdict(self.layout_settings),
            "description": self.description,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> LayoutSpec:
        """Inverse of `to_json`."""
        return cls(**dict(d))


DEFAULT_LAYOUT = LayoutSpec(
    left={
        "Data Table": ["data_table"],
        "Datapoint Editor": ["datapoint_editor"],
        "Slices": ["slice_editor"],
    },
    upper={"Salience": ["lm_salience", "salience_maps"], "Compare Prompts": ["prompt_compare"],
           "Embeddings": ["embeddings"]},
    lower={
        "Predictions": ["generated_text", "classification_results", "regression_results"],
        "Metrics": ["metrics", "confusion_matrix"],
        "Counterfactuals": ["counterfactuals"],
        "Partial Dependence": ["pdp"],
    },
    description="All modules that apply to the loaded models and datasets.",
)

LM_LAYOUT = LayoutSpec(
    left={"Data Table": ["data_table"], "Datapoint Editor": ["datapoint_editor"]},
    upper={"Sequence Salience": ["lm_salience"], "Compare Prompts": ["prompt_compare"]},
    lower={"Generated Text": ["generated_text"]},
    layout_settings=LayoutSettings(hide_toolbar=True, main_height=60, center_page=True),
    description="Prompt debugging: pick a prompt, see the response and why the model wrote it.",
)

CLASSIFICATION_LAYOUT = LayoutSpec(
    left={"Data Table": ["data_table"], "Datapoint Editor": ["datapoint_editor"]},
    upper={"Explanations": ["salience_maps"], "Embeddings": ["embeddings"]},
    lower={
        "Predictions": ["classification_results", "scalars"],
        "Metrics": ["metrics", "confusion_matrix"],
        "Thresholds": ["threshold", "curves"],
        "Counterfactuals": ["counterfactuals"],
        "Partial Dependence": ["pdp"],
    },
    description="Classifiers: predictions, metrics, salience and thresholds.",
)

SIMPLE_LAYOUT = LayoutSpec(
    upper={"Editor": ["datapoint_editor"]},
    lower={"Predictions": ["generated_text", "classification_results", "regression_results"]},
    layout_settings=LayoutSettings(hide_toolbar=True, main_height=30, center_page=True),
    description="Minimal: edit one example and see its predictions.",
)

_BUILTIN: dict[str, LayoutSpec] = {
    "default": DEFAULT_LAYOUT,
    "lm": LM_LAYOUT,
    "classification": CLASSIFICATION_LAYOUT,
    "simple": SIMPLE_LAYOUT,
}


def all_layouts() -> dict[str, LayoutSpec]:
    """The built-in layouts by name: "default", "lm", "classification", "simple"."""
    return dict(_BUILTIN)


def merge_layouts(
    user: Mapping[str, LayoutSpec | Mapping[str, Any]] | None = None,
    base: Mapping[str, LayoutSpec] | None = None,
) -> dict[str, LayoutSpec]:
    """`base` (the built-ins by default) updated with the user's layouts; same names override.

    User layouts may be LayoutSpecs or their JSON dicts; module names are validated either way.
    """
    merged = dict(all_layouts() if base is None else base)
    for name, spec in (user or {}).items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"Layout names must be non-empty strings, got {name!r}.")
        merged[name] = spec if isinstance(spec, LayoutSpec) else LayoutSpec.from_json(spec)
    return merged


def get_layout(name: str, layouts: Mapping[str, LayoutSpec] | None = None) -> LayoutSpec:
    """The layout called `name` (built-ins by default), with a helpful error if there is none."""
    layouts = all_layouts() if layouts is None else layouts
    if name not in layouts:
        raise KeyError(f"No layout named {name!r}; available: {', '.join(sorted(layouts))}.")
    return layouts[name]


def layouts_to_json(layouts: Mapping[str, LayoutSpec]) -> JsonDict:
    """Layout name -> `LayoutSpec.to_json()`."""
    return {name: spec.to_json() for name, spec in layouts.items()}


def layouts_from_json(d: Mapping[str, Any]) -> dict[str, LayoutSpec]:
    """Inverse of `layouts_to_json`."""
    return {name: LayoutSpec.from_json(v) for name, v in d.items()}
