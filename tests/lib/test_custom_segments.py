"""Custom segments (issue 14, part 3): separator blocks, labelled spans, template fields and
few-shot blocks found automatically, as labelled character spans."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from promptlit.lib.segmentation import (
    ALL_GRANULARITIES,
    MAX_SEPARATOR_CHARS,
    FewShotSegmentation,
    LabelledSegment,
    LabelledSpans,
    SeparatorSegmentation,
    check_segments,
    example_segmentation,
    render_template,
    resolve_granularity,
    segment_name,
)

SAMPLE = Path(__file__).resolve().parents[2] / "datasets" / "sample_prompts.jsonl"


def rows() -> list[dict]:
    return [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]


def labelled(seg, text: str) -> list[tuple[str, str]]:
    return [(label, text[s:e]) for s, e, label in seg.labelled_spans(text)]


def test_separator_blocks_start_at_each_match():
    text = "Intro line\n\n## Rules\nBe kind.\n## Examples\nQ: hi\nA: hello\n"
    seg = SeparatorSegmentation(r"^## ")
    assert labelled(seg, text) == [
        ("block 1", "Intro line"),
        ("block 2", "## Rules\nBe kind."),
        ("block 3", "## Examples\nQ: hi\nA: hello"),
    ]
    # a range: only blocks inside it, positions absolute
    assert seg.labelled_spans(text, 12, 29) == [(12, 29, "block 1")]
    assert str(seg) == "blocks /^## /"
    # a zero-width separator at every line start: one block per non-blank line
    assert [t for _, t in labelled(SeparatorSegmentation("^"), "a\n\nb\nc")] == ["a", "b", "c"]


def test_separator_errors_are_clear():
    with pytest.raises(ValueError, match=r"'\(' is not a valid regular expression: missing \) "
                                         r"at position 1"):
        SeparatorSegmentation("(")
    with pytest.raises(ValueError, match="the pattern is empty"):
        SeparatorSegmentation("")
    with pytest.raises(ValueError, match=f"at most {MAX_SEPARATOR_CHARS} are accepted"):
        SeparatorSegmentation("a" * (MAX_SEPARATOR_CHARS + 1))


def test_catastrophic_separator_is_stopped_by_its_timeout():
    seg = SeparatorSegmentation(r"(\w+\s?)*$", timeout=0.2)
    t0 = time.monotonic()
    with pytest.raises(ValueError, match=r"took longer than 0.2 s .*catastrophic backtracking"):
        seg.labelled_spans("word " * 3000 + "!")
    assert time.monotonic() - t0 < 10


def test_few_shot_blocks_of_the_story_prompt():
    mistake = rows()[0]["prompt"]
    got = labelled(FewShotSegmentation(), mistake)
    assert [label for label, _ in got] == ["instruction", "example 1", "example 2", "query"]
    assert got[0][1] == "Analyze a dish on the menu for a guest and give a recommendation."
    assert got[1][1].startswith("Taste-likes: cheese, tomatoes\n")
    assert got[1][1].endswith("Recommendation: You have to try it.")
    assert got[3][1] == ("Taste-likes: rice, chicken\nTaste-dislikes: onions\n"
                         "Suggestion: Soup with onions\nAnalysis:")
    # arithmetic and headlines: other structures, same rule
    assert [label for label, _ in labelled(FewShotSegmentation(), rows()[9]["prompt"])] == [
        "instruction", "example 1", "example 2", "query"]
    # no repeated label: the whole prompt is one segment
    assert labelled(FewShotSegmentation(), rows()[6]["prompt"]) == [
        ("prompt", rows()[6]["prompt"])]


def test_few_shot_last_complete_block_is_an_example():
    text = "Q: a\nA: 1\n\nQ: b\nA: 2"
    assert [label for label, _ in labelled(FewShotSegmentation(), text)] == [
        "example 1", "example 2"]
    with pytest.raises(ValueError, match="min_repeats must be >= 2"):
        FewShotSegmentation(1)


def test_labelled_spans_fill_gaps_and_shift_into_a_wrapped_prompt():
    prompt = "Say hi.\n\nExample: x\nNow: y"
    seg = LabelledSpans([{"label": "example", "start": 9, "end": 19}], source_text=prompt)
    assert labelled(seg, prompt) == [("", "Say hi."), ("example", "Example: x"), ("", "Now: y")]
    wrapped = "<start_of_turn>user\n" + prompt + "<end_of_turn>\n"
    shift = len("<start_of_turn>user\n")
    assert seg.labelled_spans(wrapped, shift, shift + len(prompt))[1] == (
        9 + shift, 19 + shift, "example")
    with pytest.raises(ValueError, match="the text explained is not that prompt"):
        seg.labelled_spans("something else entirely")


@pytest.mark.parametrize(("spans", "message"), [
    ("nope", r"expected a list"),
    ([{"label": "a", "start": 0}], r"segments\[0\]: missing \['end'\]"),
    ([{"label": "a", "start": 0, "end": 3, "x": 1}], r"unknown key\(s\) \['x'\]"),
    ([{"label": "", "start": 0, "end": 3}], r"segments\[0\].label: must be a non-empty string"),
    ([{"label": "a", "start": 1.5, "end": 3}], r"segments\[0\].start: must be a whole number"),
    ([{"label": "a", "start": 3, "end": 3}], r"need 0 <= start < end"),
    ([{"label": "a", "start": 0, "end": 99}], r"segments\[0\].end: 99 is beyond the prompt"),
    ([{"label": "a", "start": 0, "end": 5}, {"label": "b", "start": 4, "end": 8}],
     r"'a' \[0, 5\) and 'b' \[4, \.\.\.\) overlap"),
])
def test_check_segments_names_the_bad_entry(spans, message):
    with pytest.raises(ValueError, match=message):
        check_segments(spans, text_length=10)


def test_template_fields_are_labelled_segments():
    prompt, spans = render_template("Likes: {likes}\nDish: {dish}\n{{not a field}}",
                                    {"likes": "fish", "dish": "soup"})
    assert prompt == "Likes: fish\nDish: soup\n{not a field}"
    assert [(label, prompt[s:e]) for s, e, label in spans] == [("likes", "fish"),
                                                               ("dish", "soup")]
    with pytest.raises(ValueError, match="uses field 'dish', which 'fields' lacks"):
        render_template("{dish}", {})
    with pytest.raises(ValueError, match="is not a plain field name"):
        render_template("{dish!r}", {"dish": "x"})
    with pytest.raises(ValueError, match=r"fields.dish: must be a string"):
        render_template("{dish}", {"dish": 3})
    with pytest.raises(ValueError, match="template: Single '}'"):
        render_template("oops }", {})


def test_example_segmentation_and_resolve():
    ex = {"template": "Q: {q}\nA:", "fields": {"q": "why"}, "prompt": "Q: why\nA:"}
    assert example_segmentation(ex).labelled_spans(ex["prompt"]) == [(0, 2, ""), (3, 6, "q"),
                                                                      (7, 9, "")]
    # an edited prompt keeps the labels of the fields whose text it still holds
    edited = example_segmentation({**ex, "prompt": "Well. Q: why\nA:"})
    assert [(label, "Well. Q: why\nA:"[s:e]) for s, e, label in
            edited.labelled_spans("Well. Q: why\nA:")] == [("", "Well. Q:"), ("q", "why"),
                                                            ("", "A:")]
    gone = example_segmentation({**ex, "prompt": "Q: how\nA:"})
    assert gone.dropped == ["q"] and gone.labelled_spans("Q: how\nA:") == [(0, 9, "")]
    with pytest.raises(ValueError, match="defines no segments"):
        example_segmentation({"prompt": "x"})
    assert resolve_granularity("words") == "words"
    assert isinstance(resolve_granularity("few-shot"), FewShotSegmentation)
    assert isinstance(resolve_granularity("blocks", separator="^#"), SeparatorSegmentation)
    with pytest.raises(ValueError, match="splits the prompt at a separator"):
        resolve_granularity("blocks")
    with pytest.raises(ValueError, match="Unknown granularity 'chapters'"):
        resolve_granularity("chapters")
    assert set(ALL_GRANULARITIES) >= {"tokens", "turns", "blocks", "few-shot", "segments"}


def test_segments_with_text_follow_an_edited_prompt():
    original = "Rules: be kind.\n\nQ: 2+2\nA: 4\n\nQ: 3+3\nA:"
    segments = [{"label": "rules", "start": 0, "end": 15, "text": original[:15]},
                {"label": "shot", "start": 17, "end": 28, "text": original[17:28]}]
    edited = "Intro.\n" + original.replace("A: 4", "A: four")
    seg = LabelledSpans(segments, source_text=edited)
    assert seg.dropped == ["shot"]  # its text changed: unlabelled now
    assert [(label, edited[s:e]) for s, e, label in seg.labelled_spans(edited)][:2] == [
        ("", "Intro."), ("rules", "Rules: be kind.")]
    moved = LabelledSpans(segments, source_text="Intro.\n" + original)
    assert moved.dropped == [] and moved.items[1] == (24, 35, "shot")
    with pytest.raises(ValueError, match=r"segments\[0\].text: 2 characters, but \[start, end\) "
                                         r"spans 3"):
        LabelledSpans([{"label": "a", "start": 0, "end": 3, "text": "ab"}])


def test_labelled_segment_is_a_segment_with_a_label():
    seg = LabelledSegment("Q: a", 0, 4, 1.5, "example 1")
    text, start, end, score = seg
    assert (text, start, end, score, seg.label) == ("Q: a", 0, 4, 1.5, "example 1")
    assert seg._replace(score=2.0).label == "example 1"
    assert segment_name(seg) == "example 1" and segment_name(seg._replace(label="")) == "Q: a"
