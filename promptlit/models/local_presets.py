"""promptlit's own model presets: a directory with a `promptlit_model.json` marker file.

Classifiers and regressors that are not keras-hub tasks (`SklearnClassifier`, `SklearnRegressor`,
`KerasTextClassifier`) save themselves as a directory whose `promptlit_model.json` names the
class that reads it back, its constructor config and free-form metadata (training data, measured
held-out accuracy, ...). `promptlit.models.presets` recognises such a directory by that file, so
`--models sent:presets/sentiment_clf` works like any other handle, and keras-hub preset loading
is unchanged.

Example:
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> _ = write_marker(d, "SklearnRegressor", {"feature_names": ["x"]}, {"r2": 0.5})
    >>> is_promptlit_preset(d), read_marker(d)["class"]
    (True, 'SklearnRegressor')
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

MARKER = "promptlit_model.json"
"""The file that makes a directory a promptlit model preset."""

FORMAT_VERSION = 1

#: class name in the marker -> (module, class) that implements `from_preset(path)`.
PRESET_CLASSES: dict[str, tuple[str, str]] = {
    "SklearnClassifier": ("promptlit.models.sklearn_models", "SklearnClassifier"),
    "SklearnRegressor": ("promptlit.models.sklearn_models", "SklearnRegressor"),
    "KerasTextClassifier": ("promptlit.models.text_classifier", "KerasTextClassifier"),
}


def is_promptlit_preset(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a directory holding a `promptlit_model.json` marker."""
    return (Path(path) / MARKER).is_file()


def write_marker(path: str | os.PathLike[str], class_name: str, config: dict[str, Any],
                 metadata: dict[str, Any] | None = None) -> Path:
    """Writes `<path>/promptlit_model.json` (creating `path`); returns the file written."""
    if class_name not in PRESET_CLASSES:
        raise ValueError(f"unknown preset class {class_name!r}; known: {sorted(PRESET_CLASSES)}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    doc = {"format_version": FORMAT_VERSION, "class": class_name, "config": config,
           "metadata": dict(metadata or {})}
    out = path / MARKER
    out.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return out


def read_marker(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed marker of a preset directory, checked for the keys loading needs.

    Raises:
      FileNotFoundError: no marker in `path`.
      ValueError: the marker is not valid JSON or lacks "class" / "config".
    """
    file = Path(path) / MARKER
    if not file.is_file():
        raise FileNotFoundError(f"{path} is not a promptlit model preset: {MARKER} is missing.")
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ValueError(f"{file}: not valid JSON ({e}); re-save the preset.") from e
    if not isinstance(doc, dict) or "class" not in doc or not isinstance(doc.get("config"), dict):
        raise ValueError(f"{file}: expected an object with 'class' and 'config' keys; "
                         "re-save the preset with save_to_preset().")
    if doc["class"] not in PRESET_CLASSES:
        raise ValueError(f"{file}: unknown model class {doc['class']!r}; known: "
                         f"{sorted(PRESET_CLASSES)}.")
    doc.setdefault("metadata", {})
    return doc


def load_preset(path: str | os.PathLike[str], **kwargs: Any) -> Any:
    """Loads the model saved in a promptlit preset directory (dispatching on its marker)."""
    doc = read_marker(path)
    module, cls = PRESET_CLASSES[doc["class"]]
    return getattr(importlib.import_module(module), cls).from_preset(path, **kwargs)
