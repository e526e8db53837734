"""Word replacer: counterfactuals from user substitutions such as "great -> terrible, good -> bad".

LIT's "Word Replacer". Each rule `source -> target` (alternatives with `|`:
"good -> bad | awful") matches whole words only (a source may span several words: "not bad ->
good"); with `ignore_casing` (default) "Great" matches "great", and with `match_case` (default)
the replacement takes the matched word's case ("Great" -> "Terrible", "GREAT" -> "TERRIBLE").

Every matched occurrence, in every selected text field, may be kept or replaced by one of its
targets; the generator returns every combination except the original, fewest substitutions
first (so the first outputs are LIT's one-substitution-at-a-time examples, in text order), capped
at `max_outputs`. Other fields are copied; model-only inputs such as token embeddings are
dropped (they would be stale). The model is not called.

Example:
    >>> from promptlit.api import types
    >>> class Data:
    ...     def spec(self): return {"text": types.TextSegment()}
    >>> gen = WordReplacer()
    >>> [ex["text"] for ex in gen.generate({"text": "Great acting, great plot"}, None, Data(),
    ...                                    {"subs": "great -> terrible"})]
    ['Terrible acting, great plot', 'Great acting, terrible plot', 'Terrible acting, terrible plot']
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from typing import Any

from promptlit.api import types
from promptlit.api.components import Generator
from promptlit.api.types import JsonDict, Spec
from promptlit.components import _classifier_common as common
from promptlit.lib import utils

__all__ = ["WordReplacer", "parse_substitutions"]


def parse_substitutions(subs: str) -> dict[str, list[str]]:
    """Parses "a -> b, c -> d | e" into `{"a": ["b"], "c": ["d", "e"]}` (rules in order).

    Raises:
        ValueError: a rule without "->" or with an empty source, naming the rule.
    """
    rules: dict[str, list[str]] = {}
    for raw in subs.split(","):
        rule = raw.strip()
        if not rule:
            continue
        if "->" not in rule:
            raise ValueError(f"word_replacer: substitution {rule!r} has no '->'; write rules like "
                             "'great -> terrible, good -> bad | awful'.")
        source, targets = (part.strip() for part in rule.split("->", 1))
        if not source:
            raise ValueError(f"word_replacer: substitution {rule!r} has nothing before '->'.")
        options = [t.strip() for t in targets.split("|")]
        rules.setdefault(source, [])
        rules[source] += [t for t in options if t not in rules[source]]
    return rules


class WordReplacer(Generator):
    """Replaces whole words by user-given substitutes, in every combination (capped)."""

    _name = "word_replacer"

    def is_compatible(self, model: Any, dataset: Any) -> bool:
        """True when the model reads a TextSegment field that the dataset has."""
        return bool(common.text_fields(model, dataset))

    def config_spec(self) -> Spec:
        """subs, text_fields, ignore_casing, match_case, max_outputs."""
        return {
            "subs": types.TextSegment(default="great -> terrible",
                                      description="Substitutions: 'a -> b, c -> d | e'."),
            "text_fields": types.MultiFieldMatcher(spec="input", types=["TextSegment"],
                                                   select_all=True,
                                                   description="Text fields to edit."),
            "ignore_casing": types.Boolean(default=True,
                                           description="Match words regardless of case."),
            "match_case": types.Boolean(default=True,
                                        description="Give replacements the matched word's case."),
            "max_outputs": types.Integer(min_val=1, max_val=10000, default=100,
                                         description="At most this many examples per input."),
        }

    def generate(self, example: JsonDict, model: Any, dataset: Any,
                 config: JsonDict | None = None) -> list[JsonDict]:
        """Counterfactuals of `example` (see the module docstring); [] when nothing matches.

        Raises:
            ValueError: unparseable `subs`, unknown text fields, max_outputs < 1.
        """
        cfg = {k: v.default for k, v in self.config_spec().items()}
        cfg.update(config or {})
        rules = parse_substitutions(str(cfg["subs"] or ""))
        max_outputs = int(cfg["max_outputs"])
        if max_outputs < 1:
            raise ValueError(f"word_replacer: max_outputs must be >= 1, got {max_outputs}.")
        if not rules:
            return []
        fields = common.text_fields(model, dataset, cfg.get("text_fields"))
        occurrences = []  # (field, (start, end), [replacement strings])
        for field in fields:
            text = example.get(field)
            if isinstance(text, str):
                for span, targets in self._matches(text, rules, bool(cfg["ignore_casing"])):
                    if cfg["match_case"]:
                        targets = [common.match_case(t, text[span[0]:span[1]]) for t in targets]
                    occurrences.append((field, span, targets))
        base = common.strip_model_only_fields(example, model)
        results: list[JsonDict] = []
        seen = {utils.example_id(base)}
        for choice in self._combinations(occurrences):
            new = dict(base)
            for field in {occurrences[i][0] for i, _ in choice}:
                edits = {occurrences[i][1]: t for i, t in choice if occurrences[i][0] == field}
                new[field] = common.replace_spans(str(example[field]), edits)
            key = utils.example_id(new)
            if key not in seen:
                seen.add(key)
                results.append(new)
                if len(results) >= max_outputs:
                    break
        return results

    @staticmethod
    def _matches(text: str, rules: dict[str, list[str]], ignore_casing: bool
                 ) -> list[tuple[tuple[int, int], list[str]]]:
        """Non-overlapping whole-word matches, leftmost (then longest) first."""
        flags = re.IGNORECASE if ignore_casing else 0
        found = []
        for source, targets in rules.items():
            pattern = re.compile(r"(?<!\w)" + re.escape(source) + r"(?!\w)", flags)
            found += [(m.start(), -m.end(), targets) for m in pattern.finditer(text)]
        matches, last_end = [], 0
        for start, neg_end, targets in sorted(found, key=lambda f: (f[0], f[1])):
            if start >= last_end:
                matches.append(((start, -neg_end), targets))
                last_end = -neg_end
        return matches

    @staticmethod
    def _combinations(occurrences: Sequence[tuple[str, tuple[int, int], list[str]]]
                      ) -> Iterator[list[tuple[int, str]]]:
        """Every non-empty choice [(occurrence index, replacement)], fewest replacements first."""
        for size in range(1, len(occurrences) + 1):
            for idxs in itertools.combinations(range(len(occurrences)), size):
                for targets in itertools.product(*(occurrences[i][2] for i in idxs)):
                    yield list(zip(idxs, targets, strict=True))
