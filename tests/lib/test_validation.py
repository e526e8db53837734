"""Validation finds planted errors at exact ids/fields, per mode, with fixable messages."""

import numpy as np
import pytest

from promptlit.api import dtypes, types
from promptlit.lib import utils, validation
from promptlit.lib.validation import DataError, Problem

SPEC = {
    "prompt": types.TextSegment(),
    "target": types.TextSegment(required=False),
    "label": types.CategoryLabel(vocab=["yes", "no"]),
    "n": types.Integer(),
    "flag": types.Boolean(),
    "tokens": types.Tokens(),
    "emb": types.Embeddings(),
    "score": types.Scalar(),
}

# index -> (field, value planted there; None = field removed)
PLANTED = {
    0: ("prompt", 3),
    7: ("prompt", None),
    13: ("label", "maybe"),
    42: ("n", "3"),
    58: ("flag", "yes"),
    77: ("tokens", [1, 2]),
    91: ("emb", [[1.0, 2.0]]),
    99: ("score", "high"),
}
WARNING_AT = 50  # score 2.0 is outside [0, 1]: a warning, not an error


def make_examples(n=100):
    examples = []
    for i in range(n):
        ex = {
            "prompt": f"Question {i}?",
            "label": "yes" if i % 2 else "no",
            "n": i,
            "flag": bool(i % 3),
            "tokens": ["Question", str(i)],
            "emb": np.full(4, i, np.float32),
            "score": i / 100,
        }
        if i % 4 == 0:
            ex["target"] = f"Answer {i}."
        if i in PLANTED:
            field, value = PLANTED[i]
            if value is None:
                del ex[field]
            else:
                ex[field] = value
        if i == WARNING_AT:
            ex["score"] = 2.0
        examples.append(ex)
    return examples


class FakeDataset:
    """Duck-typed dataset: `.spec()` and `.examples`."""

    def __init__(self, examples, spec, source=None):
        self.examples = examples
        self.source = source
        self._spec = spec

    def spec(self):
        return self._spec


@pytest.fixture(scope="module")
def examples():
    return make_examples()


def errors(problems):
    return [p for p in problems if p.severity == "error"]


def test_first_mode_checks_only_example_zero(examples):
    problems = validation.validate_dataset(FakeDataset(examples, SPEC), mode="first")
    assert len(problems) == 1
    p = problems[0]
    assert (p.index, p.field, p.example_id) == (0, "prompt", utils.example_id(examples[0]))
    assert p.message == "expected TextSegment (a string), got int 3"


def test_all_mode_finds_every_planted_error_with_exact_ids_and_fields(examples):
    problems = validation.validate_dataset(FakeDataset(examples, SPEC), mode="all")
    found = {(p.index, p.example_id, p.field) for p in errors(problems)}
    expected = {(i, utils.example_id(examples[i]), f) for i, (f, _) in PLANTED.items()}
    assert found == expected
    assert len(errors(problems)) == len(PLANTED)
    warnings = [p for p in problems if p.severity == "warning"]
    assert [(w.index, w.field) for w in warnings] == [(WARNING_AT, "score")]
    assert "outside the range [0, 1]" in warnings[0].message
    by_index = {p.index: p for p in errors(problems)}
    assert "required field is missing" in by_index[7].message
    assert "not one of ['yes', 'no']" in by_index[13].message
    assert by_index[42].message == "expected Integer (an integer), got str '3'"
    assert by_index[58].message.startswith("expected Boolean (true or false), got str 'yes'")
    assert by_index[77].message.startswith("expected Tokens (a list of strings)")
    assert "has 2 dimension(s), needs 1" in by_index[91].message
    assert by_index[99].message.startswith("expected Scalar (a number), got str 'high'")


def test_sample_mode_checks_five_percent_deterministically(examples):
    ds = FakeDataset(examples, SPEC)
    for seed in range(30):
        picked = validation.select_indices(100, "sample", seed)
        assert len(picked) == 5 and picked == sorted(set(picked))
        assert picked == validation.select_indices(100, "sample", seed)
        problems = validation.validate_dataset(ds, mode="sample", seed=seed)
        assert {p.index for p in problems} <= set(picked)
        assert {p.index for p in errors(problems)} == set(picked) & set(PLANTED)
    assert validation.select_indices(100, "sample", 0) != validation.select_indices(
        100, "sample", 1
    )
    assert validation.select_indices(10, "sample", 0) == validation.select_indices(10, "sample", 0)
    assert len(validation.select_indices(10, "sample", 3)) == 1  # at least one
    assert len(validation.select_indices(30, "sample", 3)) == 2  # ceil(1.5)
    # Some seed's sample catches a planted error, and it is reported at the right place.
    seed = next(s for s in range(1000) if set(validation.select_indices(100, "sample", s)) & {42})
    found = validation.validate_dataset(ds, mode="sample", seed=seed)
    assert (42, "n") in {(p.index, p.field) for p in found}


def test_modes_accept_examples_spec_pair_and_reject_unknown_mode(examples):
    assert len(validation.validate_dataset((examples, SPEC), mode="all")) == len(PLANTED) + 1
    assert validation.validate_dataset(([], SPEC), mode="all") == []
    with pytest.raises(ValueError, match=r"Unknown validation mode 'most'; use one of \['first'"):
        validation.validate_dataset((examples, SPEC), mode="most")


def test_non_lit_type_in_spec_is_reported():
    problems = validation.validate_dataset(([{"a": 1}], {"a": int}))
    assert problems[0].field == "a" and "not a LitType" in problems[0].message


def test_problem_str_reads_like_a_compiler_error():
    p = Problem(
        "expected TextSegment (a string), got int 3",
        source="sample.jsonl",
        line=12,
        field="prompt",
        fix='write the value as a JSON string, e.g. "text"',
    )
    assert str(p) == (
        "sample.jsonl:12: field 'prompt': expected TextSegment (a string), got int 3. "
        'Fix: write the value as a JSON string, e.g. "text".'
    )
    q = Problem("bad", example_id="0123456789abcdef", index=4, field="x")
    assert str(q) == "example #4 (id 0123456789ab): field 'x': bad."
    w = Problem("too big", field="s", severity="warning")
    assert str(w) == "warning: field 's': too big."


def test_data_error_carries_problems():
    e = DataError("line is not valid JSON", source="d.jsonl", line=3, fix="check quotes")
    assert e.problems == [
        Problem("line is not valid JSON", source="d.jsonl", line=3, fix="check quotes")
    ]
    assert str(e) == "d.jsonl:3: line is not valid JSON. Fix: check quotes."
    many = DataError([Problem(f"p{i}", line=i) for i in range(25)])
    text = str(many)
    assert text.startswith("25 problems:\n  - line 0: p0.")
    assert text.endswith("... and 5 more")
    assert isinstance(many, Exception) and len(many.problems) == 25


GOOD_BAD = [
    (types.TextSegment(), "hi", 3),
    (types.GeneratedText(), "hi", None),
    (types.URL(), "http://x", ["http://x"]),
    (types.CategoryLabel(vocab=["a"]), "a", "b"),
    (types.CategoryLabel(), "anything", 1),
    (types.Boolean(), np.bool_(True), 1),
    (types.Scalar(), 0.5, True),
    (types.Scalar(), np.float32(0.5), "0.5"),
    (types.Integer(), np.int32(3), 3.0),
    (types.ImageBytes(), "data:image/gif;base64,AA", "AA"),
    (types.JPEGBytes(), "data:image/jpeg;base64,AA", "data:image/png;base64,AA"),
    (types.PNGBytes(), "data:image/png;base64,AA", "data:image/jpeg;base64,AA"),
    (types.Tokens(), ["a", "b"], "a b"),
    (types.SequenceTags(align="t"), ["B", "I"], [1]),
    (types.SparseMultilabel(vocab=["x", "y"]), ["x"], ["z"]),
    (types.GeneratedTextCandidates(), [["a", 0.5], ("b", None)], [("a", "high")]),
    (types.ReferenceTexts(), [("a", 1.0)], ["a"]),
    (types.TokenTopKPreds(), [[("a", 0.9), ("b", 0.1)]], [[("a", 0.1), ("b", 0.9)]]),
    (types.TokenScores(align="t"), [0.1, -2.0], ["x"]),
    (types.TokenScores(align="t"), np.zeros(3), np.zeros((3, 2))),
    (types.ReferenceScores(), [1, 2.5], "1"),
    (types.TokenOffsets(align="t"), [[0, 2], [3, 5]], [[3, 2]]),
    (types.TokenOffsets(align="t"), np.array([[0, 1]]), [[0.5, 1.0]]),
    (types.SubwordOffsets(align_in="a", align_out="b"), [0, 2], [0.5]),
    (types.SpanLabels(align="t"), [dtypes.SpanLabel(start=0, end=1)], [(0, 1)]),
    (types.EdgeLabels(align="t"), [dtypes.EdgeLabel(span1=(0, 1), span2=None, label=1)], [1]),
    (types.MultiSegmentAnnotations(), [dtypes.AnnotationCluster(label="x", spans=[])], ["x"]),
    (types.Embeddings(), np.ones(4, np.float32), np.ones((2, 2))),
    (types.Embeddings(), [1, 2], ["a"]),
    (types.Gradients(), [0.1], np.ones((1, 1))),
    (types.TokenEmbeddings(), np.ones((3, 4)), np.ones(3)),
    (types.TokenGradients(), [[1.0, 2.0]], [1.0, 2.0]),
    (types.ImageGradients(), np.ones((2, 2, 3)), np.ones(2)),
    (types.AttentionHeads(align_in="a", align_out="b"), np.ones((2, 3, 3)), np.ones((3, 3))),
    (types.MulticlassPreds(vocab=["a", "b"]), [0.3, 0.7], [0.1, 0.2, 0.7]),
    (
        types.TokenSalience(),
        dtypes.TokenSalience(tokens=["a"], salience=[1.0]),
        dtypes.TokenSalience(tokens=["a"], salience=[1.0, 2.0]),
    ),
    (types.FeatureSalience(), dtypes.FeatureSalience(salience={"a": 1.0}), {"a": 1.0}),
    (
        types.SequenceSalience(),
        dtypes.SequenceSalienceMap(tokens_in=["a"], tokens_out=["b"], salience=np.ones((1, 2))),
        np.ones((1, 2)),
    ),
    (types.ImageSalience(), "data:image/png;base64,AA", [1.0]),
    (types.MetricResult(), 0.25, "0.25"),
    (types.CurveDataPoints(), [(0.0, 1.0), [0.5, 0.5]], [(0.0,)]),
    (types.SingleFieldMatcher(spec="output", types="Tokens"), "tokens", ["tokens"]),
    (types.MultiFieldMatcher(spec="output", types="Tokens"), ["a", "b"], "a"),
]


@pytest.mark.parametrize(("lit_type", "good", "bad"), GOOD_BAD, ids=lambda x: type(x).__name__)
def test_validate_value_per_type(lit_type, good, bad):
    assert validation.validate_value(lit_type, good) is None
    message = validation.validate_value(lit_type, bad)
    assert message is not None
    assert message.startswith(f"expected {lit_type.type_name}")
    assert validation.fix_hint(lit_type)


def test_every_public_type_has_a_validator_or_accepts_anything():
    anything = {"InfluentialExamples", "ListLitType", "Salience"}
    for name, cls in types.all_types().items():
        if name in anything or not cls.__module__.startswith("promptlit"):
            continue
        assert validation._rule_for(cls.__new__(cls)) is not None, name


def test_register_validator_for_a_user_type():
    import dataclasses

    @dataclasses.dataclass(kw_only=True)
    class Percent(types.Scalar):
        """A percentage."""

    @validation.register_validator(Percent, expected="a number in [0, 100]", fix="use 0..100")
    def _check(t, v):
        return None if 0 <= v <= 100 else "out of range"

    assert validation.validate_value(Percent(), 50) is None
    assert validation.validate_value(Percent(), 150) == (
        "expected Percent (a number in [0, 100]), got int 150: out of range"
    )


##
# Models


class FakeLM:
    """Duck-typed model; `broken` maps example index -> how to corrupt its output."""

    def __init__(self, broken=None, raise_on_predict=False, drop_one=False):
        self.broken = broken or {}
        self.raise_on_predict = raise_on_predict
        self.drop_one = drop_one

    def input_spec(self):
        return {"prompt": types.TextSegment(), "target": types.TextSegment(required=False)}

    def output_spec(self):
        return {
            "response": types.GeneratedText(parent="target"),
            "response_tokens": types.Tokens(parent="response"),
            "response_logprobs": types.TokenScores(align="response_tokens"),
            "response_offsets": types.TokenOffsets(align="response_tokens", parent="response"),
            "prompt_embedding": types.Embeddings(),
            "debug": types.TextSegment(required=False),
        }

    def predict(self, inputs):
        if self.raise_on_predict:
            raise RuntimeError("out of memory")
        outputs = []
        for ex in inputs:
            i = int(ex["prompt"].split()[1].rstrip("?"))
            out = {
                "response": "Answer.",
                "response_tokens": ["Ans", "wer", "."],
                "response_logprobs": [-0.5, -0.1, -0.2],
                "response_offsets": [[0, 3], [3, 6], [6, 7]],
                "prompt_embedding": np.zeros(4, np.float32),
            }
            kind = self.broken.get(i)
            if kind == "missing":
                del out["response"]
            elif kind == "type":
                out["prompt_embedding"] = "zeros"
            elif kind == "align":
                out["response_logprobs"] = [-0.5, -0.1]
            elif kind == "offsets":
                out["response_offsets"] = [[0, 3], [3, 6]]
            outputs.append(out)
        return outputs[:-1] if self.drop_one else outputs


@pytest.fixture(scope="module")
def lm_data():
    examples = [{"prompt": f"Question {i}?", "target": "Answer."} for i in range(100)]
    return FakeDataset(examples, {"prompt": types.TextSegment(), "target": types.TextSegment()})


BROKEN = {0: "type", 10: "missing", 20: "align", 30: "offsets"}


def test_validate_model_all_finds_each_broken_output(lm_data):
    problems = validation.validate_model(FakeLM(BROKEN), lm_data, mode="all")
    found = {(p.index, p.field) for p in problems}
    assert found == {
        (0, "prompt_embedding"),
        (10, "response"),
        (20, "response_logprobs"),
        (30, "response_offsets"),
    }
    by_index = {p.index: p for p in problems}
    assert by_index[0].example_id == utils.example_id(lm_data.examples[0])
    assert by_index[0].message.startswith("expected Embeddings (an array of numbers), got str")
    assert "model output is missing (expected GeneratedText (a string))" in by_index[10].message
    assert by_index[20].message.startswith(
        "has 2 entries but the aligned field 'response_tokens' has 3 tokens"
    )
    assert "one entry per token of 'response_tokens'" in by_index[20].fix
    assert "has 2 entries" in by_index[30].message


def test_validate_model_first_and_sample(lm_data):
    first = validation.validate_model(FakeLM(BROKEN), lm_data, mode="first")
    assert [(p.index, p.field) for p in first] == [(0, "prompt_embedding")]
    assert validation.validate_model(FakeLM(), lm_data, mode="all") == []
    seed = 5
    picked = set(validation.select_indices(100, "sample", seed))
    broken = {i: "type" for i in range(0, 100, 2)}
    problems = validation.validate_model(FakeLM(broken), lm_data, mode="sample", seed=seed)
    assert {p.index for p in problems} == {i for i in picked if i % 2 == 0}


def test_validate_model_reports_predict_failures(lm_data):
    crash = validation.validate_model(FakeLM(raise_on_predict=True), lm_data)
    assert len(crash) == 1
    assert crash[0].message == "FakeLM.predict raised RuntimeError: out of memory"
    short = validation.validate_model(FakeLM(drop_one=True), lm_data, mode="all")
    assert short[0].message == "FakeLM.predict returned 99 outputs for 100 inputs"


def test_validate_model_stops_on_incompatible_dataset():
    ds = FakeDataset([{"text": "x"}], {"text": types.TextSegment()}, source="data.jsonl")
    problems = validation.validate_model(FakeLM(), ds)
    assert len(problems) == 1
    assert problems[0].source == "data.jsonl"
    assert "requires input field 'prompt'" in problems[0].message


def test_validate_output_spec_flags_dangling_references():
    out = {"scores": types.TokenScores(align="tokens"), "g": types.GeneratedText(parent="label")}
    problems = validation.validate_output_spec(out, {"prompt": types.TextSegment()})
    assert [(p.field, p.message) for p in problems] == [
        (
            "scores",
            "TokenScores(align='tokens') refers to a field that is in neither the output spec "
            "nor the input spec",
        )
    ]


# -- issue 10, item 7 ----------------------------------------------------------------------------


def test_null_required_field_is_reported_as_null_not_missing():
    (p,) = validation.validate_example({"prompt": None}, {"prompt": types.TextSegment()},
                                       source="f.jsonl", line=7)
    assert str(p).startswith("f.jsonl:7: field 'prompt': required field is null")
    assert "Fix: replace null with a value" in str(p)
    (p,) = validation.validate_example({}, {"prompt": types.TextSegment()})
    assert "required field is missing" in str(p)


def test_deep_values_are_problems_not_recursion_errors():
    deep = []
    for _ in range(5000):
        deep = [deep]
    assert validation.describe_value(deep).startswith("list [[[")
    problems = validation.validate_example(
        {"prompt": "a", "tokens": deep, "meta": deep},
        {"prompt": types.TextSegment(), "tokens": types.Tokens()})
    assert [(p.field, "nested too deeply" in p.message) for p in problems] == [
        ("tokens", True), ("meta", True)]
    (p,) = validation.validate_example({"c": [deep]}, {"c": types.GeneratedTextCandidates()})
    assert "nested too deeply" in p.message
