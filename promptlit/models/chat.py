"""Chat templates: wrap a prompt (or a conversation) in an instruction-tuned model's chat format.

An instruction-tuned model answers well only when its input looks like its training data, e.g.
Gemma's ``<start_of_turn>user\\n…<end_of_turn>\\n<start_of_turn>model\\n``. A `ChatTemplate`
renders a list of messages ``[{"role": "user", "content": "…"}, …]`` into that text **and says
which characters are template and which are the messages' own text**, so that promptlit can
tokenize the two separately (a token never straddles template and content), grey the template
tokens out, keep them out of rankings and colour ranges, and map every content character back
to the message it came from.

Templates come from three places (`resolve_chat_template`):

* ``"auto"``: the template a Hugging Face checkpoint ships (``chat_template.jinja``,
  ``chat_template.json`` or the ``chat_template`` of ``tokenizer_config.json``), rendered with
  Jinja in a sandbox (`JinjaTemplate`); else, for a keras-hub instruct preset (a name containing
  ``instruct`` or ``it`` as a word: ``gemma2_instruct_2b_en``, ``gemma-2-2b-it``), the built-in
  template of the model's family; else none.
* a built-in name (`BUILTIN_TEMPLATES`): ``gemma``, ``llama3``, ``mistral``, ``chatml`` (alias
  ``qwen``), ``transcript`` (plain "User: …" lines, for base models).
* a path: a ``.jinja`` file, a ``tokenizer_config.json`` / ``chat_template.json``, or a
  checkpoint directory holding one.

``"none"`` (or None) means no template: the prompt goes in as it is.

Example:
    >>> t = get_builtin("gemma")
    >>> r = t.render([{"role": "user", "content": "Hi!"}])
    >>> r.text
    '<start_of_turn>user\\nHi!<end_of_turn>\\n<start_of_turn>model\\n'
    >>> [r.text[s:e] for s, e in r.template_spans]
    ['<start_of_turn>user\\n', '<end_of_turn>\\n<start_of_turn>model\\n']
    >>> [(turn.role, r.text[turn.start:turn.end]) for turn in r.turns]
    [('user', 'Hi!')]

Security: a checkpoint's template is code from whoever made the checkpoint. It is rendered by
`jinja2.sandbox.ImmutableSandboxedEnvironment` (no attribute access to Python internals, no
mutation of the messages, ranges bounded by Jinja's sandbox), and only the person who starts
promptlit chooses templates by path; an example in a dataset may only pick ``"none"``,
``"auto"`` or a built-in name (`check_example_template`).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

__all__ = [
    "AUTO",
    "BUILTIN_TEMPLATES",
    "EXAMPLE_CHOICES",
    "NONE",
    "ROLES",
    "BuiltinTemplate",
    "ChatTemplate",
    "ChatTemplateError",
    "JinjaTemplate",
    "Rendered",
    "Turn",
    "builtin_for_model",
    "check_example_template",
    "check_messages",
    "example_prompt",
    "find_checkpoint_template",
    "get_builtin",
    "is_instruct_name",
    "load_template_file",
    "resolve_chat_template",
    "transcript",
]

AUTO = "auto"
NONE = "none"
ROLES: tuple[str, ...] = ("system", "user", "assistant")
"""Message roles, normalised ("model", Gemma's word for the assistant, is read as "assistant")."""

_ROLE_ALIASES = {"model": "assistant"}
_SENTINEL = re.compile("\ue000(\\d+)\ue001")


class ChatTemplateError(ValueError):
    """A template could not be found, loaded or rendered; the message says where and how to fix."""


# ----------------------------------------------------------------------------- messages


def check_messages(messages: Any, *, where: str = "messages") -> list[dict[str, Any]]:
    """Validates a conversation and returns it normalised (a new list of new dicts).

    Args:
        messages: a non-empty list of ``{"role": ..., "content": str}``; roles are "system",
            "user", "assistant" (or "model"); the last message must be the user's (the model
            answers it). Other keys (e.g. "name") are kept for Jinja templates.
        where: how to name the value in errors (e.g. ``"data.jsonl:3: field 'messages'"``).

    Raises:
        ChatTemplateError: naming the message index, the bad key and the fix.
    """
    example = '[{"role": "user", "content": "Hello"}]'
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise ChatTemplateError(f"{where}: must be a list of messages like {example}, got "
                                f"{type(messages).__name__}.")
    if not messages:
        raise ChatTemplateError(f"{where}: the conversation is empty; give at least one user "
                                f"message, e.g. {example}.")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise ChatTemplateError(f"{where}[{i}]: a message must be an object like "
                                    f'{{"role": "user", "content": "Hello"}}, got '
                                    f"{type(m).__name__}.")
        role = m.get("role")
        role = _ROLE_ALIASES.get(role, role) if isinstance(role, str) else role
        if role not in ROLES:
            raise ChatTemplateError(f"{where}[{i}]: role {m.get('role')!r} is not one of "
                                    f"{[*ROLES, 'model']}; fix the 'role' of this message.")
        content = m.get("content")
        if not isinstance(content, str):
            raise ChatTemplateError(f"{where}[{i}]: 'content' must be a string, got "
                                    f"{type(content).__name__}; write the message text as a "
                                    "JSON string.")
        out.append({**{str(k): v for k, v in m.items()}, "role": role, "content": content})
    if out[-1]["role"] != "user":
        raise ChatTemplateError(f"{where}: the last message has role {out[-1]['role']!r}; the "
                                "model answers the last user message, so end the conversation "
                                "with one (put a reference answer in the example's 'target').")
    return out


# ----------------------------------------------------------------------------- rendered text


@dataclasses.dataclass(frozen=True)
class Turn:
    """One message's text inside a rendered prompt.

    Attributes:
        role: "system", "user" or "assistant".
        start, end: char ``[start, end)`` of the message's content in `Rendered.text`.
        message: index of the message in the conversation (-1 when unknown, e.g. for a prompt
            that was already formatted).
    """

    role: str
    start: int
    end: int
    message: int = -1


@dataclasses.dataclass(frozen=True)
class Rendered:
    """A prompt as the model sees it, and which of its characters are template.

    Attributes:
        text: the full prompt text (without the start token: the model's preprocessor adds it).
        template_spans: sorted, disjoint char ``[start, end)`` spans of template text (turn
            markers, role words, control tokens). Everything else is the messages' own text.
        turns: the messages' texts, in text order.
        template: the template's name (None: no template).
    """

    text: str
    template_spans: tuple[tuple[int, int], ...] = ()
    turns: tuple[Turn, ...] = ()
    template: str | None = None

    @classmethod
    def from_parts(cls, parts: Sequence[tuple[str, int | None, str]], template: str | None
                   ) -> Rendered:
        """Builds a result from ``(text, message index or None for template, role)`` parts."""
        text: list[str] = []
        spans: list[tuple[int, int]] = []
        turns: list[Turn] = []
        pos = 0
        for piece, message, role in parts:
            if not piece:
                continue
            end = pos + len(piece)
            if message is None:
                if spans and spans[-1][1] == pos:
                    spans[-1] = (spans[-1][0], end)
                else:
                    spans.append((pos, end))
            else:
                turns.append(Turn(role, pos, end, message))
            text.append(piece)
            pos = end
        return cls("".join(text), tuple(spans), tuple(turns), template)

    def pieces(self) -> list[tuple[int, int, bool]]:
        """``(start, end, is_template)`` pieces that tile `text`, in order."""
        out, pos = [], 0
        for s, e in self.template_spans:
            if s > pos:
                out.append((pos, s, False))
            out.append((s, e, True))
            pos = e
        if pos < len(self.text):
            out.append((pos, len(self.text), False))
        return out

    def strip_prefix(self, prefix: str) -> Rendered:
        """This prompt without a leading ``prefix`` that is template text (e.g. a ``<bos>`` the
        checkpoint's template writes while the model's preprocessor adds it as well)."""
        if not prefix or not self.text.startswith(prefix) or not self.template_spans:
            return self
        s0, e0 = self.template_spans[0]
        if s0 != 0 or e0 < len(prefix):
            return self
        n = len(prefix)
        spans = tuple((max(s - n, 0), e - n) for s, e in self.template_spans)
        spans = tuple(sp for sp in spans if sp[1] > sp[0])
        turns = tuple(dataclasses.replace(t, start=t.start - n, end=t.end - n)
                      for t in self.turns)
        return Rendered(self.text[n:], spans, turns, self.template)


# ----------------------------------------------------------------------------- templates


class ChatTemplate:
    """Base class of chat templates: render messages to text with their template spans.

    Attributes (set by subclasses):
        name: short name shown in the UI and in `KerasCausalLM.description`.
        stop_tokens: texts that end the model's turn (e.g. ``"<end_of_turn>"``). The model stops
            generating at the vocabulary token of each one, or at the text when it is not a
            single token.
        control_tokens: texts that are single vocabulary tokens (turn markers); template text is
            split at them so each becomes exactly its token.
        bos_token: the start-token text a template may write first (removed when the model's
            preprocessor adds the start token itself).
    """

    name: str
    stop_tokens: tuple[str, ...]
    control_tokens: tuple[str, ...]
    bos_token: str | None

    def render(self, messages: Sequence[Mapping[str, Any]], *,
               add_generation_prompt: bool = True) -> Rendered:
        """The prompt text for ``messages`` (checked by `check_messages`)."""
        raise NotImplementedError

    def mark(self, text: str) -> Rendered:
        """An already formatted prompt with its template text found (see `is_formatted`)."""
        pattern = self.marker_pattern
        if pattern is None:
            return Rendered(text, (), (Turn("user", 0, len(text)),), self.name)
        parts: list[tuple[str, int | None, str]] = []
        pos, role = 0, "user"
        for m in pattern.finditer(text):
            if m.end() == m.start():
                continue
            if m.start() > pos:
                parts.append((text[pos:m.start()], -1, role))
            parts.append((m.group(0), None, ""))
            found = m.groupdict().get("role")
            if found:
                role = _ROLE_ALIASES.get(found, found) if found in (*ROLES, "model") else "user"
            pos = m.end()
        if pos < len(text):
            parts.append((text[pos:], -1, role))
        return Rendered.from_parts(parts, self.name)

    @property
    def marker_pattern(self) -> re.Pattern[str] | None:
        """A regex matching template text in an already formatted prompt (None: cannot tell)."""
        controls = [c for c in self.control_tokens if c]
        if not controls:
            return None
        return re.compile("|".join(re.escape(c) for c in sorted(controls, key=len,
                                                                  reverse=True)))

    def is_formatted(self, text: str) -> bool:
        """Whether ``text`` already holds this template's turn markers (so it is not wrapped
        again: an example may carry a prompt formatted by hand)."""
        return any(c and c in text for c in self.control_tokens if c != self.bos_token)

    def fingerprint(self) -> str:
        """A short hash of everything that changes the rendered text (for cache keys)."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line: the name and where the template comes from."""
        return self.name


@dataclasses.dataclass(frozen=True, eq=False)
class BuiltinTemplate(ChatTemplate):
    """A chat format written out in Python: text before and after each role's content.

    Attributes:
        name: the template's name (`BUILTIN_TEMPLATES` key).
        prefix: role -> text before a message's content.
        suffix: role -> text after it.
        generation_prompt: text that opens the model's turn.
        system_separator: None when the system message is a turn of its own; else the format
            has no system role and the system text is put before the first user message's text,
            separated by this (Gemma, Mistral).
        stop_tokens, control_tokens, bos_token: see `ChatTemplate`.
        marker: regex of template text in already formatted prompts (a ``role`` group names
            the turn that follows); default: the control tokens.
        families: keras-hub model class name fragments this template is the default of.
    """

    name: str
    prefix: Mapping[str, str]
    suffix: Mapping[str, str]
    generation_prompt: str
    system_separator: str | None = None
    stop_tokens: tuple[str, ...] = ()
    control_tokens: tuple[str, ...] = ()
    bos_token: str | None = None
    marker: str | None = None
    families: tuple[str, ...] = ()

    def render(self, messages: Sequence[Mapping[str, Any]], *,
               add_generation_prompt: bool = True) -> Rendered:
        """See `ChatTemplate.render`; message contents are kept exactly as given."""
        msgs = check_messages(messages)
        parts: list[tuple[str, int | None, str]] = []
        first_user = next(i for i, m in enumerate(msgs) if m["role"] == "user")
        merged = [] if self.system_separator is None else [
            i for i in range(first_user) if msgs[i]["role"] == "system"]
        for i, m in enumerate(msgs):
            role, content = m["role"], m["content"]
            if i in merged:  # no system role: its text opens the first user message
                continue
            parts.append((self.prefix[role], None, ""))
            if i == first_user:
                for j in merged:
                    parts.append((msgs[j]["content"], j, "system"))
                    parts.append((self.system_separator or "", None, ""))
            parts.append((content, i, role))
            parts.append((self.suffix[role], None, ""))
        if add_generation_prompt:
            parts.append((self.generation_prompt, None, ""))
        return Rendered.from_parts(parts, self.name)

    @property
    def marker_pattern(self) -> re.Pattern[str] | None:
        """`marker` compiled, else the control tokens."""
        return re.compile(self.marker) if self.marker else super().marker_pattern

    def fingerprint(self) -> str:
        """The name and the format's strings, hashed."""
        blob = json.dumps([self.name, dict(self.prefix), dict(self.suffix),
                           self.generation_prompt, self.system_separator, self.stop_tokens],
                          sort_keys=True)
        return f"builtin:{self.name}:{hashlib.sha1(blob.encode()).hexdigest()[:12]}"

    def describe(self) -> str:
        """E.g. "gemma (built-in)"."""
        return f"{self.name} (built-in)"


def _same(text: str) -> dict[str, str]:
    return dict.fromkeys(ROLES, text)


BUILTIN_TEMPLATES: dict[str, BuiltinTemplate] = {
    "gemma": BuiltinTemplate(
        name="gemma",
        prefix={"system": "<start_of_turn>user\n", "user": "<start_of_turn>user\n",
                "assistant": "<start_of_turn>model\n"},
        suffix=_same("<end_of_turn>\n"),
        generation_prompt="<start_of_turn>model\n",
        system_separator="\n\n",
        stop_tokens=("<end_of_turn>",),
        control_tokens=("<start_of_turn>", "<end_of_turn>", "<bos>"),
        bos_token="<bos>",
        marker=r"<bos>|<start_of_turn>(?:(?P<role>user|model|system)\n)?|<end_of_turn>\n?",
        families=("Gemma",),
    ),
    "llama3": BuiltinTemplate(
        name="llama3",
        prefix={r: f"<|start_header_id|>{r}<|end_header_id|>\n\n" for r in ROLES},
        suffix=_same("<|eot_id|>"),
        generation_prompt="<|start_header_id|>assistant<|end_header_id|>\n\n",
        stop_tokens=("<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"),
        control_tokens=("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                        "<|eot_id|>"),
        bos_token="<|begin_of_text|>",
        marker=(r"<\|begin_of_text\|>|<\|start_header_id\|>(?P<role>[a-z]+)<\|end_header_id\|>"
                r"\n*|<\|eot_id\|>"),
        families=("Llama3",),
    ),
    "mistral": BuiltinTemplate(
        name="mistral",
        prefix={"system": "[INST] ", "user": "[INST] ", "assistant": " "},
        suffix={"system": " [/INST]", "user": " [/INST]", "assistant": "</s>"},
        generation_prompt="",
        system_separator="\n\n",
        stop_tokens=("</s>",),
        control_tokens=("[INST]", "[/INST]", "</s>", "<s>"),
        bos_token="<s>",
        marker=r"<s>|\[INST\] ?| ?\[/INST\] ?|</s>",
        families=("Mistral", "Mixtral"),
    ),
    "chatml": BuiltinTemplate(
        name="chatml",
        prefix={r: f"<|im_start|>{r}\n" for r in ROLES},
        suffix=_same("<|im_end|>\n"),
        generation_prompt="<|im_start|>assistant\n",
        stop_tokens=("<|im_end|>", "<|endoftext|>"),
        control_tokens=("<|im_start|>", "<|im_end|>"),
        marker=r"<\|im_start\|>(?:(?P<role>system|user|assistant)\n)?|<\|im_end\|>\n?",
        families=("Qwen",),
    ),
    "transcript": BuiltinTemplate(
        name="transcript",
        prefix={"system": "System: ", "user": "User: ", "assistant": "Assistant: "},
        suffix=_same("\n\n"),
        generation_prompt="Assistant:",
        stop_tokens=("\nUser:",),
    ),
}
"""The built-in chat formats by name. ``transcript`` ("User: …\\n\\nAssistant:") is what a model
without a chat template reads a multi-turn conversation as."""

_ALIASES = {"qwen": "chatml", "gemma2": "gemma", "gemma3": "gemma", "llama-3": "llama3",
            "llama": "llama3"}


def get_builtin(name: str) -> BuiltinTemplate:
    """The built-in template ``name`` (aliases: qwen -> chatml, gemma2/gemma3 -> gemma).

    Raises:
        ChatTemplateError: an unknown name (listing the known ones).
    """
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in BUILTIN_TEMPLATES:
        raise ChatTemplateError(f"unknown chat template {name!r}; use one of "
                                f"{_choices_text()}.")
    return BUILTIN_TEMPLATES[key]


def transcript(messages: Sequence[Mapping[str, Any]]) -> str:
    """A conversation as plain "User: …" / "Assistant: …" text, ending with "Assistant:".

    The text a model without a chat template reads a ``messages`` example as (and the ``prompt``
    that `promptlit.data` shows for such an example).
    """
    return BUILTIN_TEMPLATES["transcript"].render(messages).text


def example_prompt(example: Mapping[str, Any]) -> str | list[dict[str, Any]]:
    """What a chat model reads from an example: its conversation, or its prompt text.

    An example with ``messages`` is that conversation, unless its ``prompt`` was changed from the
    conversation's `transcript` (e.g. edited in the datapoint editor): then the edited prompt is
    what the user means. Without ``messages``, the ``prompt``.

    Raises:
        ChatTemplateError: bad ``messages`` (`check_messages`). KeyError: neither field.
    """
    messages = example.get("messages")
    if messages:
        checked = check_messages(messages, where="example field 'messages'")
        prompt = example.get("prompt")
        if prompt is None or prompt == transcript(checked):
            return checked
        return str(prompt)
    if "prompt" not in example:
        raise KeyError(f"an example needs a 'prompt' (or 'messages') field; it has "
                       f"{sorted(example)}")
    return str(example["prompt"])


def _choices_text() -> str:
    names = ", ".join([*BUILTIN_TEMPLATES, *_ALIASES])
    return (f"'auto', 'none', a built-in name ({names}), or a path to a .jinja file, a "
            "tokenizer_config.json or a checkpoint directory")


# ----------------------------------------------------------------------------- Jinja (HF)


def _raise_exception(message: str) -> None:
    from jinja2.exceptions import TemplateError

    raise TemplateError(message)


def _tojson(value: Any, indent: int | None = None, **_: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _strftime_now(fmt: str) -> str:
    return datetime.datetime.now().strftime(fmt)


@dataclasses.dataclass(frozen=True, eq=False)
class JinjaTemplate(ChatTemplate):
    """A Hugging Face chat template (Jinja source from a checkpoint), rendered in a sandbox.

    Rendered like `transformers`' ``apply_chat_template``: ``trim_blocks`` and
    ``lstrip_blocks``, the ``loopcontrols`` extension, ``raise_exception``, ``strftime_now`` and
    a ``tojson`` filter; ``messages``, ``add_generation_prompt`` and the checkpoint's special
    tokens (``bos_token``, ``eos_token``, ...) are the variables.

    Which text is the messages' own is found by rendering twice: once with each message's
    content replaced by a marker, once with the real text. When the two agree (also after
    trimming contents, which many templates do), the text between markers is template; when
    they do not (the template rewrites the text), only the special tokens are marked.

    Attributes:
        source: the Jinja text.
        name: shown in the UI, e.g. "gemma-2-2b-it (checkpoint)".
        origin: the file it was read from ("" when given as text).
        special_tokens: variables such as ``{"bos_token": "<bos>", "eos_token": "<eos>"}``.
        stop_tokens, control_tokens, bos_token: see `ChatTemplate`.
    """

    source: str
    name: str = "jinja"
    origin: str = ""
    special_tokens: Mapping[str, str] = dataclasses.field(default_factory=dict)
    stop_tokens: tuple[str, ...] = ()
    control_tokens: tuple[str, ...] = ()
    bos_token: str | None = None

    @cached_property
    def _compiled(self) -> Any:
        from jinja2 import TemplateSyntaxError
        from jinja2.ext import loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                            extensions=[loopcontrols])
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise_exception
        env.globals["strftime_now"] = _strftime_now
        try:
            return env.from_string(self.source)
        except TemplateSyntaxError as e:
            raise ChatTemplateError(f"{self._where(e.lineno)}: the chat template is not valid "
                                    f"Jinja: {e.message}. Fix the template, or choose another "
                                    "with --chat-template (e.g. a built-in name, or none)."
                                    ) from None

    def _where(self, line: int | None = None) -> str:
        where = self.origin or f"chat template {self.name!r}"
        return f"{where} (template line {line})" if line else where

    def _render_text(self, messages: list[dict[str, Any]], add_generation_prompt: bool) -> str:
        from jinja2.exceptions import SecurityError, TemplateError

        try:
            return self._compiled.render(messages=messages,
                                         add_generation_prompt=add_generation_prompt,
                                         **dict(self.special_tokens))
        except ChatTemplateError:
            raise
        except SecurityError as e:
            raise ChatTemplateError(f"{self._where()}: the chat template tried something the "
                                    f"sandbox forbids ({e}); promptlit does not run it. Use a "
                                    "built-in template (--chat-template gemma, ...) instead."
                                    ) from None
        except TemplateError as e:
            raise ChatTemplateError(f"{self._where(getattr(e, 'lineno', None))}: rendering the "
                                    f"conversation failed: {e}. Fix the messages (e.g. this "
                                    "template may not accept a 'system' role) or choose another "
                                    "template.") from None
        except Exception as e:  # noqa: BLE001 - any error inside a template is the template's
            raise ChatTemplateError(f"{self._where()}: rendering the conversation failed: "
                                    f"{type(e).__name__}: {e}.") from None

    def render(self, messages: Sequence[Mapping[str, Any]], *,
               add_generation_prompt: bool = True) -> Rendered:
        """See `ChatTemplate.render` and the class docstring (how template text is found)."""
        msgs = check_messages(messages)
        real = self._render_text(msgs, add_generation_prompt)
        marked = self._render_text([{**m, "content": f"\ue000{i}\ue001"}
                                    for i, m in enumerate(msgs)], add_generation_prompt)
        layout = _SENTINEL.split(marked)  # [template, index, template, index, ..., template]
        for transform in (lambda s: s, str.strip):
            parts: list[tuple[str, int | None, str]] = []
            for k, piece in enumerate(layout):
                if k % 2 == 0:
                    parts.append((piece, None, ""))
                else:
                    i = int(piece)
                    if not 0 <= i < len(msgs):
                        break
                    parts.append((transform(msgs[i]["content"]), i, msgs[i]["role"]))
            else:
                if "".join(p for p, _, _ in parts) == real:
                    return Rendered.from_parts(parts, self.name)
        # The template rewrites the messages' text: only its control tokens can be told apart.
        return self.mark(real)

    def fingerprint(self) -> str:
        """Hash of the source and the special tokens."""
        blob = json.dumps([self.source, dict(self.special_tokens)], sort_keys=True)
        return f"jinja:{hashlib.sha1(blob.encode()).hexdigest()[:16]}"

    def describe(self) -> str:
        """E.g. "gemma-2-2b-it (checkpoint template, tokenizer_config.json)"."""
        return f"{self.name} (from {Path(self.origin).name})" if self.origin else self.name


def _token_text(value: Any) -> str | None:
    """A special token as written in tokenizer_config.json: a string or {"content": ...}."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ChatTemplateError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column "
                                f"{e.colno}). Fix the file, or pass --chat-template none / a "
                                "built-in name.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ChatTemplateError(f"{path}: cannot read it ({e}).") from None


def _pick_template(value: Any, path: Path) -> str:
    """The default template of a ``chat_template`` value (a string, or a list of named ones)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        named = {t.get("name"): t.get("template") for t in value if isinstance(t, Mapping)}
        chosen = named.get("default") or next((t for t in named.values()
                                               if isinstance(t, str)), None)
        if isinstance(chosen, str):
            return chosen
    raise ChatTemplateError(f"{path}: 'chat_template' must be a Jinja string (or a list of "
                            '{"name", "template"} with a "default"); fix the file or choose '
                            "another template.")


def _tokenizer_facts(directory: Path) -> tuple[dict[str, str], tuple[str, ...], tuple[str, ...]]:
    """(special-token variables, control tokens, stop tokens) from a checkpoint's tokenizer
    and generation configs."""
    specials: dict[str, str] = {}
    controls: list[str] = []
    stops: list[str] = []
    config_path = directory / "tokenizer_config.json"
    config = _read_json(config_path) if config_path.is_file() else {}
    if not isinstance(config, Mapping):
        config = {}
    for key in ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token",
                "mask_token"):
        text = _token_text(config.get(key))
        if text:
            specials[key] = text
    by_id: dict[int, str] = {}
    added = config.get("added_tokens_decoder")
    if isinstance(added, Mapping):
        for k, v in added.items():
            text = _token_text(v)
            if text and isinstance(v, Mapping) and v.get("special"):
                controls.append(text)
            if text and str(k).isdigit():
                by_id[int(k)] = text
    for text in config.get("additional_special_tokens") or ():
        text = _token_text(text)
        if text:
            controls.append(text)
    if specials.get("eos_token"):
        stops.append(specials["eos_token"])
    gen_path = directory / "generation_config.json"
    if gen_path.is_file():
        gen = _read_json(gen_path)
        eos = gen.get("eos_token_id") if isinstance(gen, Mapping) else None
        for i in eos if isinstance(eos, list) else [eos]:
            if isinstance(i, int) and i in by_id:
                stops.append(by_id[i])
    for s in ("<end_of_turn>", "<|eot_id|>", "<|im_end|>", "<|end|>"):
        if s in controls:
            stops.append(s)
    return specials, tuple(dict.fromkeys(controls)), tuple(dict.fromkeys(stops))


def find_checkpoint_template(directory: str | Path) -> JinjaTemplate | None:
    """The chat template a Hugging Face checkpoint directory ships, or None.

    Looked for in this order: ``chat_template.jinja``, ``chat_template.json`` (``{"chat_template":
    ...}``), the ``chat_template`` entry of ``tokenizer_config.json``. Special tokens, control
    tokens and end-of-turn tokens come from ``tokenizer_config.json`` and
    ``generation_config.json``.

    Raises:
        ChatTemplateError: a file that exists but cannot be read (with file and line).
    """
    d = Path(directory)
    if not d.is_dir():
        return None
    source: str | None = None
    origin: Path | None = None
    if (d / "chat_template.jinja").is_file():
        origin = d / "chat_template.jinja"
        try:
            source = origin.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ChatTemplateError(f"{origin}: cannot read it ({e}).") from None
    else:
        for fname in ("chat_template.json", "tokenizer_config.json"):
            p = d / fname
            if p.is_file():
                data = _read_json(p)
                if isinstance(data, Mapping) and data.get("chat_template") is not None:
                    source, origin = _pick_template(data["chat_template"], p), p
                    break
    if source is None or origin is None:
        return None
    specials, controls, stops = _tokenizer_facts(d)
    return JinjaTemplate(source=source, name=f"{d.name} (checkpoint)", origin=str(origin),
                         special_tokens=specials, stop_tokens=stops,
                         control_tokens=tuple(dict.fromkeys([*controls, *stops])),
                         bos_token=specials.get("bos_token"))


def load_template_file(path: str | Path) -> ChatTemplate:
    """A template from a path: a checkpoint directory, a ``.json`` config, or a Jinja file.

    A Jinja file next to a ``tokenizer_config.json`` takes that file's special tokens.

    Raises:
        ChatTemplateError: the path holds no template or cannot be read.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        found = find_checkpoint_template(p)
        if found is None:
            raise ChatTemplateError(f"{p}: this directory has no chat template (looked for "
                                    "chat_template.jinja, chat_template.json and 'chat_template' "
                                    "in tokenizer_config.json). Pass a template file or a "
                                    "built-in name.")
        return found
    if not p.is_file():
        raise ChatTemplateError(f"chat template {str(path)!r} is neither a file nor a "
                                f"directory; use {_choices_text()}.")
    if p.suffix.lower() == ".json":
        data = _read_json(p)
        if not isinstance(data, Mapping) or data.get("chat_template") is None:
            raise ChatTemplateError(f"{p}: has no 'chat_template' entry; pass a file that has "
                                    "one, or a .jinja file.")
        source = _pick_template(data["chat_template"], p)
    else:
        try:
            source = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ChatTemplateError(f"{p}: cannot read it ({e}).") from None
    specials, controls, stops = _tokenizer_facts(p.parent)
    template = JinjaTemplate(source=source, name=p.stem, origin=str(p),
                             special_tokens=specials, stop_tokens=stops,
                             control_tokens=tuple(dict.fromkeys([*controls, *stops])),
                             bos_token=specials.get("bos_token"))
    template._compiled  # noqa: B018 - report a syntax error now, at load, with the file
    return template


# ----------------------------------------------------------------------------- resolution

_INSTRUCT = re.compile(r"instruct|(?:^|[^a-z0-9])it(?:$|[^a-z0-9])")


def is_instruct_name(name: str | None) -> bool:
    """Whether a preset / checkpoint name marks an instruction-tuned model: it contains
    "instruct", or "it" as a word ("gemma2_instruct_2b_en", "gemma-2-2b-it", "gemma3_1b_it")."""
    if not name:
        return False
    last = name.rstrip("/").split("/")[-1].lower()
    return bool(_INSTRUCT.search(last))


def builtin_for_model(model_class: str) -> BuiltinTemplate | None:
    """The built-in template of a keras-hub model family (by class name, e.g. "Gemma3CausalLM")."""
    for template in BUILTIN_TEMPLATES.values():
        if any(f in model_class for f in template.families):
            return template
    return None


def _checkpoint_dir(handle: str | None) -> Path | None:
    """The local directory behind a handle (a local path, or an ``hf://`` one in the cache)."""
    if not handle:
        return None
    try:
        from promptlit.models import presets

        resolved = presets.resolve_handle(handle)
    except Exception:  # noqa: BLE001 - an in-memory / test handle has no directory
        return None
    if resolved.path is not None and resolved.path.is_dir():
        return resolved.path
    if resolved.kind == "hf":
        return presets._hf_cached_dir(resolved)
    return None


def resolve_chat_template(spec: str | ChatTemplate | None, *, handle: str | None = None,
                          model_class: str = "") -> ChatTemplate | None:
    """The template that ``spec`` names for a model (None: no template).

    Args:
        spec: "auto", "none" / None, a built-in name (`BUILTIN_TEMPLATES`, aliases qwen, gemma2,
            gemma3), a path (`load_template_file`), or a `ChatTemplate`.
        handle: where the model came from (a local / ``hf://`` checkpoint is searched for its
            template; its name tells an instruct preset).
        model_class: the keras-hub model class name (picks the built-in family for "auto").

    Returns:
        For "auto": the checkpoint's template, else the family's built-in template when the
        handle names an instruct model, else None.

    Raises:
        ChatTemplateError: an unknown name or an unreadable template, naming the fix.
    """
    if spec is None or isinstance(spec, ChatTemplate):
        return spec
    if not isinstance(spec, str):
        raise ChatTemplateError(f"chat_template must be a string or a ChatTemplate, got "
                                f"{type(spec).__name__}; use {_choices_text()}.")
    key = spec.strip()
    if key.lower() == NONE or not key:
        return None
    if key.lower() == AUTO:
        directory = _checkpoint_dir(handle)
        if directory is not None:
            found = find_checkpoint_template(directory)
            if found is not None:
                return found
        if is_instruct_name(handle):
            return builtin_for_model(model_class)
        return None
    if key.lower() in BUILTIN_TEMPLATES or key.lower() in _ALIASES:
        return get_builtin(key)
    if any(c in key for c in "/\\.") or Path(key).expanduser().exists():
        return load_template_file(key)
    raise ChatTemplateError(f"unknown chat template {spec!r}; use {_choices_text()}.")


EXAMPLE_CHOICES: tuple[str, ...] = (NONE, AUTO, *BUILTIN_TEMPLATES, *_ALIASES)
"""What an example's ``chat_template`` field may say (no paths: data cannot choose files)."""


def check_example_template(value: Any, *, where: str = "chat_template") -> str:
    """An example's ``chat_template`` override, checked: "none" (its prompt goes in as it is,
    e.g. because it is already formatted), "auto" (the model's own template) or a built-in name.

    Raises:
        ChatTemplateError: anything else (paths included: a dataset may not make the server
            read files), naming the field and the choices.
    """
    if isinstance(value, str) and value.strip().lower() in EXAMPLE_CHOICES:
        return value.strip().lower()
    raise ChatTemplateError(f"{where}: {value!r} is not a template an example may choose; use "
                            f"one of {list(EXAMPLE_CHOICES)} ('none' for a prompt that is "
                            "already formatted, 'auto' for the model's own template). Template "
                            "files are chosen when the model is loaded (--chat-template PATH).")
