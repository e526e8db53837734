"""Every LitType exists under its LIT name, serializes, round-trips and compares like LIT's."""

import dataclasses
import json

import pytest

from promptlit.api import types
from promptlit.lib import serialize

CONTRACT_NAMES = """TextSegment GeneratedText URL GeneratedURL SearchQuery String ReferenceTexts
GeneratedTextCandidates Tokens TokenTopKPreds Boolean Scalar Integer ImageBytes JPEGBytes PNGBytes
RegressionScore ReferenceScores CategoryLabel MulticlassPreds SparseMultilabel SparseMultilabelPreds
SequenceTags SpanLabels EdgeLabels MultiSegmentAnnotations Embeddings Gradients TokenEmbeddings
TokenGradients ImageGradients AttentionHeads TokenScores TokenOffsets TokenSalience FeatureSalience
SequenceSalience MetricResult CurveDataPoints InfluentialExamples FieldMatcher SingleFieldMatcher
MultiFieldMatcher""".split()

# Values for fields that have no default.
REQUIRED_VALUES = {
    "align": "tokens",
    "align_in": "tokens_in",
    "align_out": "tokens_out",
    "vocab": ["no", "yes"],
    "spec": "output",
    "types": ["Tokens", "TextSegment"],
}
# Non-default values for every optional field, to check they survive the round trip.
CUSTOM_VALUES = {
    "required": False,
    "description": "a field",
    "parent": "target",
    "align": "response_tokens",
    "mask_token": "[MASK]",
    "token_prefix": None,
    "null_idx": 0,
    "vocab": ["neg", "pos"],
    "min_val": -5,
    "max_val": 5,
    "step": 1,
    "autorun": True,
    "signed": True,
    "best_value": "lowest",
    "grad_for": "emb",
    "grad_target_field_key": "label",
    "threshold": 0.3,
    "exclusive": True,
    "select_all": True,
    "separator": ";",
}

ALL = types.all_types()


def make(cls, **overrides):
    kwargs = {
        f.name: REQUIRED_VALUES[f.name]
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    kwargs.update(overrides)
    return cls(**kwargs)


def custom(cls):
    names = {f.name for f in dataclasses.fields(cls)}
    return make(cls, **{k: v for k, v in CUSTOM_VALUES.items() if k in names})


def test_every_contract_type_exists_and_is_public():
    missing = [n for n in CONTRACT_NAMES if n not in ALL]
    assert missing == []
    assert len(ALL) >= 48
    for name in ["_Tensor", "_StringList", "_FloatList", "_StringCandidateList", "_GradientsBase"]:
        assert name not in ALL
        assert types.all_types(include_internal=True)[name].internal


@pytest.mark.parametrize("name", sorted(ALL))
def test_round_trip_defaults(name):
    t = make(ALL[name])
    d = t.to_json()
    assert d["__name__"] == name
    assert d["__class__"] == "LitType"
    json.dumps(d)  # plain JSON
    back = types.LitType.from_json(json.loads(json.dumps(d)))
    assert type(back) is type(t)
    assert back == t


@pytest.mark.parametrize("name", sorted(ALL))
def test_round_trip_custom_values(name):
    t = custom(ALL[name])
    back = types.LitType.from_json(json.loads(json.dumps(t.to_json())))
    assert back == t
    assert serialize.from_json(serialize.to_json(t)) == t


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_type_has_a_one_line_docstring(name):
    doc = ALL[name].__doc__
    assert doc and "\n" not in doc.strip() and not doc.startswith(name + "(")


def test_defaults_and_ranges_follow_lit():
    assert types.TextSegment().default == ""
    assert types.Boolean().default is False
    s = types.Scalar()
    assert (s.min_val, s.max_val, s.step, s.default) == (0, 1, 0.01, 0)
    i = types.Integer()
    assert (i.min_val, i.max_val, i.step) == (-32768, 32767, 1)
    assert types.Tokens().default == [] and types.Tokens().default is not types.Tokens().default
    assert types.MulticlassPreds(vocab=["a", "b", "c"]).num_labels == 3
    assert types.MetricResult(best_value="highest").best_value is types.MetricBestValue.HIGHEST
    assert types.MetricResult().to_json()["best_value"] == "none"


def test_hierarchy_matches_lit():
    assert issubclass(types.GeneratedText, types.TextSegment)
    assert issubclass(types.TextSegment, types.String)
    assert issubclass(types.GeneratedURL, types.URL)
    assert issubclass(types.URL, types.TextSegment)
    assert issubclass(types.SearchQuery, types.TextSegment)
    assert issubclass(types.JPEGBytes, types.ImageBytes)
    assert issubclass(types.PNGBytes, types.ImageBytes)
    assert issubclass(types.MulticlassPreds, types._Tensor)
    assert issubclass(types.TokenGradients, types._Tensor)
    assert issubclass(types.TokenEmbeddings, types._Tensor)
    assert issubclass(types.Integer, types.Scalar)
    assert issubclass(types.RegressionScore, types.Scalar)
    assert issubclass(types.Tokens, types._StringList)
    assert issubclass(types.TokenScores, types._FloatList)
    assert issubclass(types.SequenceSalience, types.Salience)
    assert issubclass(types.SingleFieldMatcher, types.FieldMatcher)
    assert issubclass(types.CategoryLabel, types.String)
    assert not issubclass(types.CategoryLabel, types.TextSegment)


def test_is_compatible_same_type_or_subclass():
    assert types.TextSegment().is_compatible(types.TextSegment(required=False))
    assert types.GeneratedText(parent="x").is_compatible(types.TextSegment())
    assert not types.TextSegment().is_compatible(types.GeneratedText())
    assert not types.TextSegment().is_compatible(types.CategoryLabel())
    assert types.Integer().is_compatible(types.Scalar())
    assert not types.Scalar().is_compatible(types.Integer())
    # Type-level by default: attributes like vocab / parent do not matter ...
    assert types.CategoryLabel(vocab=["a"]).is_compatible(types.CategoryLabel(vocab=["b"]))
    assert types.Tokens(parent="a").is_compatible(types.Tokens(parent="b"))
    # ... unless strict, which compares them as LIT does (ignoring required/description/default).
    assert not types.CategoryLabel(vocab=["a"]).is_compatible(
        types.CategoryLabel(vocab=["b"]), strict=True
    )
    assert types.CategoryLabel(vocab=["a"], required=False).is_compatible(
        types.CategoryLabel(vocab=("a",)), strict=True
    )
    assert not types.TextSegment().is_compatible("TextSegment")


def test_user_defined_subclass_registers_and_round_trips():
    @dataclasses.dataclass(kw_only=True)
    class ChatTranscript(types.TextSegment):
        """A chat transcript with speaker turns."""

        speakers: list[str] = dataclasses.field(default_factory=list)

    t = ChatTranscript(speakers=["user", "model"], required=False)
    back = types.LitType.from_json(json.loads(json.dumps(t.to_json())))
    assert type(back) is ChatTranscript and back == t
    assert back.is_compatible(types.TextSegment())
    assert "ChatTranscript" in types.all_types()


def test_user_subclass_cannot_shadow_builtin_name():
    with pytest.raises(ValueError, match="already exists"):

        class TextSegment(types.LitType):  # noqa: F841 - defining it is the test
            """Clash."""


def test_from_json_errors_are_explicit():
    with pytest.raises(KeyError, match="__name__"):
        types.LitType.from_json({"required": True})
    with pytest.raises(
        NameError, match="'Nope' is not a known LitType. Known types: .*TextSegment"
    ):
        types.LitType.from_json({"__name__": "Nope"})
    with pytest.raises(TypeError, match="no field"):
        types.LitType.from_json({"__name__": "TextSegment", "colour": "red"})


def test_from_json_accepts_lit_json():
    lit = {
        "__class__": "LitType",
        "__name__": "BooleanLitType",
        "required": False,
        "annotated": False,
        "default": True,
    }
    assert types.LitType.from_json(lit) == types.Boolean(required=False, default=True)
    assert types.BooleanLitType is types.Boolean and types.URLLitType is types.URL


def test_spec_json_and_remap():
    spec = {
        "prompt": types.TextSegment(),
        "response": types.GeneratedText(parent="target"),
        "tokens": types.Tokens(parent="response"),
        "scores": types.TokenScores(align="tokens"),
    }
    assert types.spec_from_json(json.loads(json.dumps(types.spec_to_json(spec)))) == spec
    remapped = types.remap_spec(spec, {"tokens": "response_tokens", "target": "reference"})
    assert list(remapped) == ["prompt", "response", "response_tokens", "scores"]
    assert remapped["scores"].align == "response_tokens"
    assert remapped["response"].parent == "reference"
    assert spec["scores"].align == "tokens"  # the original is untouched
