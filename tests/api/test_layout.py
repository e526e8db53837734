"""Layouts: built-ins, user overrides, validation of module names, JSON round-trip."""

import json

import pytest

from promptlit.api import layout
from promptlit.api.layout import LayoutSettings, LayoutSpec


def test_builtin_layouts():
    layouts = layout.all_layouts()
    assert sorted(layouts) == ["classification", "default", "lm", "simple"]
    lm = layouts["lm"]
    assert lm.left == {"Data Table": ["data_table"], "Datapoint Editor": ["datapoint_editor"]}
    assert lm.upper == {"Sequence Salience": ["lm_salience"],
                        "Compare Prompts": ["prompt_compare"]}
    assert lm.lower == {"Generated Text": ["generated_text"]}
    assert lm.modules() == ["data_table", "datapoint_editor", "lm_salience", "prompt_compare",
                            "generated_text"]
    assert lm.layout_settings.hide_toolbar is True
    for spec in layouts.values():
        assert spec.description
        assert set(spec.modules()) <= set(layout.MODULES)


def test_every_contract_module_is_known():
    names = """data_table datapoint_editor lm_salience prompt_compare generated_text slice_editor metrics
    confusion_matrix classification_results regression_results scalars salience_maps embeddings
    counterfactuals pdp curves threshold footer""".split()
    assert set(names) <= set(layout.MODULES)
    assert all(layout.MODULES[n].title for n in names)


@pytest.mark.parametrize("name", ["default", "lm", "classification", "simple"])
def test_json_round_trip(name):
    spec = layout.get_layout(name)
    back = LayoutSpec.from_json(json.loads(json.dumps(spec.to_json())))
    assert back == spec


def test_unknown_module_rejected_with_known_names():
    with pytest.raises(ValueError) as e:
        LayoutSpec(upper={"Main": ["lm_salience", "lm_saliency"]})
    msg = str(e.value)
    assert "LayoutSpec.upper['Main']: unknown module(s) ['lm_saliency']" in msg
    assert "Known modules: classification_results, confusion_matrix" in msg
    assert "register_module" in msg
    with pytest.raises(ValueError, match="unknown module"):
        layout.merge_layouts({"mine": {"left": {"A": ["nope"]}}})


def test_bad_shapes_rejected():
    with pytest.raises(TypeError, match="must be a list of module names"):
        LayoutSpec(left={"A": "data_table"})
    with pytest.raises(TypeError, match="must be a dict of tab name"):
        LayoutSpec(left=["data_table"])
    with pytest.raises(ValueError, match="tab names must be non-empty"):
        LayoutSpec(left={"": ["data_table"]})
    with pytest.raises(
        TypeError, match="valid keys: \\['hide_toolbar', 'main_height', 'center_page'\\]"
    ):
        LayoutSpec(layout_settings={"hideToolbar": True})


def test_user_layouts_merge_and_override():
    mine = LayoutSpec(
        left={"Data": [layout.ModuleConfig("data_table"), "slice_editor"]},
        lower={"Out": ["generated_text", "footer"]},
        layout_settings={"main_height": 70},
        description="mine",
    )
    assert mine.left == {"Data": ["data_table", "slice_editor"]}
    assert mine.layout_settings == LayoutSettings(main_height=70)
    merged = layout.merge_layouts({"mine": mine, "lm": mine.to_json()})
    assert sorted(merged) == ["classification", "default", "lm", "mine", "simple"]
    assert merged["lm"] == mine and merged["mine"] is mine
    assert layout.all_layouts()["lm"] == layout.LM_LAYOUT  # built-ins untouched
    assert (
        layout.layouts_from_json(json.loads(json.dumps(layout.layouts_to_json(merged)))) == merged
    )
    with pytest.raises(KeyError, match="No layout named 'other'; available: classification"):
        layout.get_layout("other", merged)


def test_register_module_extends_known_names():
    layout.register_module(layout.ModuleConfig("attention_viz", "Attention", "Attention heads."))
    try:
        assert LayoutSpec(upper={"A": ["attention_viz"]}).modules() == ["attention_viz"]
    finally:
        del layout.MODULES["attention_viz"]
