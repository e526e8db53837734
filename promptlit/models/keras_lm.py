"""`KerasCausalLM`: any keras-hub causal LM (JAX) as a promptlit `Model`, with sequence salience.

The adapter generates responses, scores them (per-token log-probs, mean-pooled embeddings), maps
tokens to character offsets in the original text, and computes `SequenceSalience` with the JAX
kernels of `promptlit.salience.kernels` (the model is split at its token embeddings once by
`lm_forward` and the compiled kernels are cached on that split).

Example:
    >>> import promptlit as pl
    >>> lm = pl.models.KerasCausalLM.from_preset("presets/tiny_lm")  # doctest: +SKIP
    >>> lm.generate(["Q: 2 + 2 =\\nA:"])  # doctest: +SKIP
    [' 4']
    >>> sal = lm.salience("Q: 2 + 2 =\\nA:", " 4")  # doctest: +SKIP
    >>> sal.matrix.shape  # <float>[num_response_tokens, num_tokens]  # doctest: +SKIP

Tokenization: the prompt is tokenized with the start token when the model's preprocessor adds one
(`<bos>` for Gemma), the response without, and the two are concatenated, so the prompt/response
boundary is exact (tokens never straddle it). Offsets are computed by aligning each piece's bytes
(SentencePiece "▁" and byte-fallback "<0xNN>", GPT-2 byte-level "Ġ"/"Ċ") to the UTF-8 bytes of the
original text, tolerant to whitespace the tokenizer adds or normalises away.

Chat templates (`promptlit.models.chat`): an instruction-tuned model reads its prompt wrapped in its
chat format. ``chat_template="auto"`` (the default) uses the template a Hugging Face checkpoint
ships, else the built-in one of a keras-hub instruct preset, else none (so base models such as
``presets/tiny_lm`` see the raw prompt). A prompt may also be a conversation
``[{"role": "user", "content": ...}, ...]``. The template text and the messages' text are tokenized
separately, so no token straddles the two; template tokens are marked in the `SequenceSalience`
(``template_mask``), and generation also stops at the template's end-of-turn token.

Precision: `dtype="bfloat16"` halves the weights' memory, but gradients in bf16 are coarse (8 bits
of mantissa). Measured on a random Gemma 2 2B against float32 (README, "Gemma 2 2B at full size"):
which words rank highest holds (top-10 overlap >= 0.9), single Grad.Input / IG scores move by up to
~25 %. For values, comparisons and IG completeness, load in float32 when the model fits (the
default).
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from promptlit.api import types
from promptlit.api.model import BatchedModel
from promptlit.api.types import JsonDict, Spec
from promptlit.models import chat
from promptlit.models.tokenizers import text_to_ids

MATRIX_METHODS: tuple[str, ...] = ("grad_l2", "grad_dot_input")
TOP_ALTERNATIVES = 5
"""Alternatives per response position in predictions (``response_top_tokens``)."""
ALL_METHODS: tuple[str, ...] = ("grad_l2", "grad_dot_input", "integrated_gradients")
SAMPLERS: tuple[str, ...] = ("greedy", "top_k", "top_p")
GENERATION_CONFIG_FILE = "promptlit_generation.json"
GENERATION_OPTIONS: tuple[str, ...] = ("max_length", "max_new_tokens", "sampler", "temperature",
                                       "top_k", "top_p", "seed", "batch_size", "stop_sequences",
                                       "chat_template")
PromptInput = str | Sequence[Mapping[str, Any]]
"""A prompt: its text, or a conversation ``[{"role": "user", "content": "..."}, ...]``."""
_WS = frozenset(b" \t\n\r\x0b\x0c")
_SPM_SPACE = "\u2581"


# ----------------------------------------------------------------------------- token bytes / offsets


@lru_cache(maxsize=1)
def _gpt2_byte_decoder() -> dict[str, int]:
    """GPT-2 byte-level alphabet: printable stand-in character -> byte value."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


def piece_bytes(piece: str, byte_level: bool) -> bytes:
    """The bytes a tokenizer piece stands for.

    SentencePiece: "▁" is a space and "<0xNN>" one byte. GPT-2 byte-level BPE: every character
    maps to one byte through GPT-2's table ("Ġ" = space, "Ċ" = newline).
    """
    if byte_level:
        table = _gpt2_byte_decoder()
        if piece and all(c in table for c in piece):
            return bytes(table[c] for c in piece)
        return piece.encode("utf-8")
    if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
        try:
            return bytes([int(piece[3:5], 16)])
        except ValueError:
            pass
    return piece.replace(_SPM_SPACE, " ").encode("utf-8")


def _match(tb: bytes, p: int, piece: bytes) -> tuple[int, int] | None:
    """Whitespace-tolerant match of `piece` at byte `p` of `tb`: (start, end) or None.

    Equal bytes are consumed together; whitespace in the piece that the text lacks (a dummy
    prefix "▁") and whitespace in the text that the piece lacks (collapsed by a normaliser) are
    skipped. The span starts at the first byte actually matched.
    """
    i, j, start = 0, p, None
    while i < len(piece):
        if j < len(tb) and tb[j] == piece[i]:
            if start is None:
                start = j
            i += 1
            j += 1
        elif piece[i] in _WS:
            i += 1
        elif j < len(tb) and tb[j] in _WS:
            j += 1
        else:
            return None
    if start is None:  # whitespace-only piece with no counterpart: empty span at p
        return (p, p)
    return (start, j)


def align_offsets(text: str, pieces_bytes: Sequence[bytes | None], *, window: int = 64
                  ) -> np.ndarray:
    """Character offsets `<int>[N, 2]` of tokens in `text`, from the bytes each token stands for.

    Args:
        text: the original text the tokens came from.
        pieces_bytes: per token, its bytes (`piece_bytes`), or None for special tokens (<bos>),
            which get an empty span.
        window: bytes searched ahead for a piece that does not match in place (a normalised
            character, `<unk>`); unmatched pieces take the text up to the next matched piece.

    Returns:
        `<int>[N, 2]` char `[start, end)` into `text`: monotone, non-overlapping. A character split
        over several byte-fallback tokens belongs to the token holding its last byte (the others
        get empty spans).
    """
    tb = text.encode("utf-8")
    n = len(pieces_bytes)
    spans: list[tuple[int, int] | None] = [None] * n
    pending: list[int] = []
    p = 0
    for i, pb in enumerate(pieces_bytes):
        if not pb:
            spans[i] = (p, p)
            continue
        m = _match(tb, p, pb)
        if m is None:
            core = pb.strip()
            k = tb.find(core, p, p + window + len(core)) if core else -1
            m = (k, k + len(core)) if k >= 0 else None
        if m is None:
            pending.append(i)
            continue
        if pending:
            spans[pending[0]] = (p, m[0])
            for k in pending[1:]:
                spans[k] = (m[0], m[0])
            pending = []
        spans[i] = m
        p = m[1]
    if pending:
        spans[pending[0]] = (p, len(tb))
        for k in pending[1:]:
            spans[k] = (len(tb), len(tb))
    # byte -> char: a token owns the characters whose last byte lies in its byte span.
    if n == 0:
        return np.zeros((0, 2), np.int64)
    last_byte = np.cumsum([len(c.encode("utf-8")) for c in text], dtype=np.int64) - 1
    byte_spans = np.asarray(spans, np.int64)
    return np.searchsorted(last_byte, byte_spans, side="left").astype(np.int64).reshape(n, 2)


def _to_str(x: Any) -> str:
    if isinstance(x, bytes):
        return x.decode("utf-8", errors="replace")
    if hasattr(x, "numpy"):
        x = x.numpy()
    if isinstance(x, np.ndarray):
        x = x.item() if x.ndim == 0 else x.tolist()
    return x.decode("utf-8", errors="replace") if isinstance(x, bytes) else str(x)


# ----------------------------------------------------------------------------- generation settings


def read_generation_config(directory: str | Path) -> JsonDict:
    """The generation defaults a local preset directory ships in ``promptlit_generation.json``.

    Like Hugging Face's ``generation_config.json``: a JSON object whose keys are
    `GENERATION_OPTIONS` (e.g. ``{"max_new_tokens": 64, "stop_sequences": ["\\n\\n"]}``). Explicit
    arguments to `KerasCausalLM.from_preset` override it. Returns {} when the file is absent.

    Raises:
        ValueError: naming the file (and line) when it is not a JSON object of known settings.
    """
    path = Path(directory) / GENERATION_CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f"{path}:{e.lineno}" if isinstance(e, json.JSONDecodeError) else str(path)
        raise ValueError(f"{where}: not valid JSON ({e}). Fix the file, or delete it to use the "
                         "default generation settings.") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}:1: must be a JSON object of generation settings, e.g. "
                         '{"max_new_tokens": 64, "stop_sequences": ["\\n\\n"]}.')
    unknown = sorted(set(config) - set(GENERATION_OPTIONS))
    if unknown:
        raise ValueError(f"{path}: unknown generation setting(s) {unknown}; allowed: "
                         f"{list(GENERATION_OPTIONS)}.")
    template = config.get("chat_template")
    if template is not None:
        if not isinstance(template, str) or not template.strip():
            raise ValueError(f"{path}: 'chat_template' must be a string: 'auto', 'none', a "
                             "built-in name or a template file relative to this directory.")
        local = Path(directory) / template
        if local.is_file():  # a template file shipped with the preset
            config["chat_template"] = str(local.resolve())
    return config


def _check_stop_sequences(stop_sequences: Any) -> tuple[str, ...]:
    if isinstance(stop_sequences, str):
        stop_sequences = (stop_sequences,)
    stops = tuple(stop_sequences or ())
    bad = [s for s in stops if not isinstance(s, str) or not s]
    if bad:
        raise ValueError(f"KerasCausalLM: stop_sequences must be non-empty strings, got {bad!r} "
                         '(e.g. stop_sequences=["\\n\\n"] ends a response at its first blank line).')
    return stops


# ----------------------------------------------------------------------------- encoded prompts


@dataclasses.dataclass(frozen=True, eq=False)
class EncodedPrompt:
    """A prompt as the model reads it: its text (chat template included), tokens and which of
    them are template.

    Attributes:
        text: the prompt text the model sees; ``offsets`` index it.
        ids: ``<int>[P]`` token ids (the start token first when the model adds one).
        offsets: ``<int>[P, 2]`` char ``[start, end)`` of each token in ``text`` (empty for the
            start token).
        template_mask: ``<bool>[P]``, True for template tokens (turn markers, role words, control
            tokens, and the start token when a template is in use).
        turns: the messages' texts in ``text`` (`promptlit.models.chat.Turn`).
        template: the chat template's name, None without one.
        stop_ids: token ids that end the model's turn under this template.
        stop_texts: end-of-turn texts that are not single tokens (cut as stop sequences).
    """

    text: str
    ids: np.ndarray
    offsets: np.ndarray
    template_mask: np.ndarray
    turns: tuple[chat.Turn, ...] = ()
    template: str | None = None
    stop_ids: tuple[int, ...] = ()
    stop_texts: tuple[str, ...] = ()


# ----------------------------------------------------------------------------- the model


def check_methods(methods: str | Sequence[str], caller: str) -> tuple[str, ...]:
    """``methods`` as a tuple without repeats, in order.

    Raises:
        ValueError: none given, or a name not in `ALL_METHODS`; the message starts with
            ``caller`` and lists the choices.
    """
    names = (methods,) if isinstance(methods, str) else tuple(methods)
    names = tuple(dict.fromkeys(names))
    unknown = [m for m in names if m not in ALL_METHODS]
    if unknown or not names:
        raise ValueError(f"{caller}: unknown method(s) {unknown or '(none)'}; choose from "
                         f"{list(ALL_METHODS)}.")
    return names


class KerasCausalLM(BatchedModel):
    """A keras-hub `CausalLM` (JAX backend) as a promptlit model with sequence salience.

    Args:
        causal_lm: a `keras_hub.models.CausalLM` with its preprocessor attached.
        handle: where it came from (part of the prediction cache key).
        name: display name.
        max_length: the longest prompt + response, in tokens (capped by the backbone).
        max_new_tokens: the longest response, in tokens.
        sampler: "greedy", "top_k" or "top_p".
        temperature: softmax temperature for the sampler.
        top_k: k for "top_k" (and the optional k cut of "top_p").
        top_p: p for "top_p".
        seed: sampler seed (None: random).
        batch_size: prompts generated per call.
        stop_sequences: strings that end a response: it is cut before the token where the first
            of them begins (e.g. ``["\\n\\n"]`` for few-shot prompts whose examples are separated
            by blank lines). The end-of-sequence token always stops generation.
        chat_template: how prompts are wrapped for an instruction-tuned model: "auto" (the
            checkpoint's template, else the built-in one when ``handle`` names an instruct
            preset, else none), "none", a built-in name ("gemma", "llama3", "mistral",
            "chatml"/"qwen"), a path to a template (`promptlit.models.chat.load_template_file`)
            or a `promptlit.models.chat.ChatTemplate`. Examples may override it per prompt
            (their ``chat_template`` field: "none", "auto" or a built-in name).
        mesh: a device mesh for data and model parallel work (`promptlit.distributed`): None
            (one device), ``"data=D,model=M"``, a `promptlit.distributed.MeshSpec` or a
            `jax.sharding.Mesh` with the axes ("data", "model"). The weights are sharded over it
            in place (keras-hub's layout map; each device keeps its shard only), salience
            kernels split target chunks and IG steps over the data axis, and generation splits
            its batch of prompts over it.

    Examples with a ``messages`` field (a conversation, see `promptlit.models.chat`) are read as
    that conversation; their ``prompt`` is then its plain-text transcript, for display (a prompt
    edited away from it is read instead: `prompt_of`).
    """

    def __init__(self, causal_lm: Any, *, handle: str | None = None, name: str | None = None,
                 max_length: int = 1024, max_new_tokens: int = 64, sampler: str = "greedy",
                 temperature: float = 1.0, top_k: int = 5, top_p: float = 0.9,
                 seed: int | None = None, batch_size: int = 4,
                 stop_sequences: Sequence[str] = (),
                 chat_template: str | chat.ChatTemplate | None = chat.AUTO,
                 mesh: Any = None) -> None:
        if sampler not in SAMPLERS:
            raise ValueError(f"KerasCausalLM: sampler must be one of {list(SAMPLERS)}, got "
                             f"{sampler!r}.")
        if getattr(causal_lm, "preprocessor", None) is None:
            raise ValueError("KerasCausalLM needs a CausalLM with a preprocessor (tokenizer); "
                             "load it with keras_hub.models.CausalLM.from_preset(...).")
        from promptlit import distributed

        where = f"{handle or type(causal_lm).__name__}: mesh"
        self.mesh = distributed.as_mesh(mesh, where=where)
        if self.mesh is not None:
            distributed.shard_causal_lm(causal_lm, self.mesh, where=where)
        self.causal_lm = causal_lm
        self.handle = handle
        self.name = name or (handle.rstrip("/").split("/")[-1] if handle else
                             type(causal_lm).__name__)
        self.max_length = int(max_length)
        self.max_new_tokens = int(max_new_tokens)
        self.sampler = sampler
        self.temperature = float(temperature)
        self.top_k = int(top_k)
        self.top_p = float(top_p)
        self.seed = seed
        self.batch_size = int(batch_size)
        self.stop_sequences = _check_stop_sequences(stop_sequences)
        self.preprocessor = causal_lm.preprocessor
        self.tokenizer = causal_lm.preprocessor.tokenizer
        self._text_to_ids = text_to_ids(self.tokenizer)
        self._lock = threading.RLock()
        self._forward: Any = None
        self._byte_level = type(self.tokenizer).__name__ != "SentencePieceTokenizer" and not any(
            "SentencePiece" in c.__name__ for c in type(self.tokenizer).__mro__)
        self._special_ids = self._find_special_ids()
        self.chat_template_setting = chat_template
        self.chat_template: chat.ChatTemplate | None = chat.resolve_chat_template(
            chat_template, handle=handle, model_class=type(causal_lm).__name__)
        self._token_ids: dict[str, int | None] = {}
        self._stop_ids = tuple(dict.fromkeys(
            [*self._find_stop_ids(), *self._template_stops(self.chat_template)[0]]))
        from promptlit.models.gemma_attention import correct_query_scaling

        # Gemma 2 / 3 27B layouts: the checkpoint's query scaling, not keras-hub's 1/sqrt(head_dim)
        # (a no-op for every other model, and when presets.load_causal_lm already corrected it).
        self.query_scaling = correct_query_scaling(causal_lm)
        self._configure_sampler()

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_preset(cls, handle: str, *, name: str | None = None, dtype: str | None = "float32",
                    timeout_s: float = 20.0, mesh: Any = None, **kwargs: Any) -> KerasCausalLM:
        """Loads any handle (`promptlit.models.presets`) and wraps it.

        Args:
            handle: preset name, ``kaggle://...``, ``hf://...`` or a local directory.
            name: display name.
            dtype: "float32" (recommended for salience) or "bfloat16"; None keeps the preset's.
            timeout_s: network probe bound (see `presets.load_causal_lm`).
            mesh: a device mesh (see the class; e.g. ``"data=2,model=4"``). A local keras-hub
                preset is loaded straight into its shards (no device holds the whole model);
                other handles are loaded, then sharded.
            **kwargs: constructor arguments (max_length, max_new_tokens, sampler, temperature,
                top_k, top_p, seed, batch_size, stop_sequences, chat_template). A local preset
                directory's ``promptlit_generation.json`` (`read_generation_config`) supplies
                defaults.

        Raises:
            promptlit.models.presets.ModelLoadError: offline, missing credentials/licence, bad
                path, or a bad ``promptlit_generation.json``.
        """
        from promptlit.models.presets import ModelLoadError, load_causal_lm, resolve_handle

        resolved = resolve_handle(handle) if "://" not in handle else None
        defaults: JsonDict = {}
        if resolved is not None and resolved.path is not None and resolved.path.is_dir():
            try:
                defaults = read_generation_config(resolved.path)
            except ValueError as e:
                raise ModelLoadError(handle, str(e), "Fix or delete that file.") from None
        from promptlit import distributed

        mesh = distributed.as_mesh(mesh, where=f"{handle}: mesh")
        backbone_cls = (distributed.preset_backbone_class(resolved.path)
                        if mesh is not None and resolved is not None and resolved.path is not None
                        else None)
        with distributed.loading_scope(backbone_cls, mesh, where=f"{handle}: mesh"):
            causal_lm = load_causal_lm(handle, dtype=dtype, timeout_s=timeout_s)
        try:
            return cls(causal_lm, handle=handle, name=name, mesh=mesh, **{**defaults, **kwargs})
        except chat.ChatTemplateError as e:
            raise ModelLoadError(handle, str(e), "Pass --chat-template none (or another "
                                                 "template) to load the model without it."
                                 ) from None

    def _find_special_ids(self) -> frozenset[int]:
        ids = set()
        for attr in ("start_token_id", "end_token_id", "pad_token_id", "end_token2_id"):
            v = getattr(self.tokenizer, attr, None)
            if isinstance(v, int | np.integer):
                ids.add(int(v))
        try:
            ids.update(int(i) for i in self.tokenizer.special_token_ids)
        except Exception:  # noqa: BLE001 - older tokenizers have no such property
            pass
        return frozenset(ids)

    def _find_stop_ids(self) -> tuple[int, ...]:
        stops = [int(self.tokenizer.end_token_id)]
        extra = getattr(self.tokenizer, "end_token2_id", None)
        if extra is not None:
            stops.append(int(extra))
        for token in ("<end_of_turn>", "<|eot_id|>", "<|im_end|>"):
            try:
                i = self.tokenizer.token_to_id(token)
            except Exception:  # noqa: BLE001 - not in this vocabulary
                continue
            if i is not None and int(i) not in stops and self.tokenizer.id_to_token(i) == token:
                stops.append(int(i))
        return tuple(stops)

    def _token_id(self, text: str) -> int | None:
        """The id of the vocabulary token that is exactly ``text``, else None (cached)."""
        if text not in self._token_ids:
            found = None
            try:
                i = self.tokenizer.token_to_id(text)
                if i is not None and self.tokenizer.id_to_token(int(i)) == text:
                    found = int(i)
            except Exception:  # noqa: BLE001 - not in this vocabulary
                found = None
            self._token_ids[text] = found
        return self._token_ids[text]

    def _template_stops(self, template: chat.ChatTemplate | None
                        ) -> tuple[tuple[int, ...], tuple[str, ...]]:
        """(token ids, texts) that end the model's turn under ``template``: each end-of-turn
        text that is one vocabulary token stops generation there, the others cut the text."""
        if template is None:
            return (), ()
        ids, texts = [], []
        for stop in template.stop_tokens:
            i = self._token_id(stop)
            if i is not None:
                ids.append(i)
            else:
                texts.append(stop)
        return tuple(ids), tuple(texts)

    def _configure_sampler(self) -> None:
        import keras_hub

        kw: dict[str, Any] = {"temperature": self.temperature}
        if self.sampler == "greedy":
            sampler = keras_hub.samplers.GreedySampler(**kw)
        elif self.sampler == "top_k":
            sampler = keras_hub.samplers.TopKSampler(k=self.top_k, seed=self.seed, **kw)
        else:
            sampler = keras_hub.samplers.TopPSampler(p=self.top_p, seed=self.seed, **kw)
        self.causal_lm.compile(sampler=sampler)

    # -- Model API ----------------------------------------------------------------------------
    @property
    def chat_template_name(self) -> str:
        """The chat template in use, for people: e.g. "gemma (built-in)", or "none"."""
        return self.chat_template.describe() if self.chat_template is not None else chat.NONE

    def description(self) -> str:
        """Class, handle, sampler and chat template, for the UI and the cache key."""
        stops = f", stops at {list(self.stop_sequences)!r}" if self.stop_sequences else ""
        template = (f", chat template {self.chat_template_name}"
                    if self.chat_template is not None else "")
        return (f"{type(self.causal_lm).__name__} from {self.handle or '(in memory)'}, "
                f"{self.sampler} sampling, at most {self.max_new_tokens} new tokens{stops}"
                f"{template}")

    def cache_config(self) -> JsonDict:
        """Settings that change outputs (part of the prediction cache key); the chat template's
        fingerprint when one is in use (none: the key of a base model is unchanged)."""
        from promptlit.models.gemma_attention import query_scaling_key

        return {"max_length": self.max_length, "max_new_tokens": self.max_new_tokens,
                "sampler": self.sampler, "temperature": self.temperature, "top_k": self.top_k,
                "top_p": self.top_p, "seed": self.seed, "stop_sequences": list(self.stop_sequences),
                "dtype": str(getattr(getattr(self.causal_lm, "dtype_policy", None), "name", "")),
                **query_scaling_key(self.causal_lm),
                **({"chat_template": self.chat_template.fingerprint()}
                   if self.chat_template is not None else {})}

    def max_minibatch_size(self) -> int:
        """Prompts generated per call."""
        return self.batch_size

    def input_spec(self) -> Spec:
        """A prompt, and optionally a reference continuation to score."""
        return {"prompt": types.TextSegment(),
                "target": types.TextSegment(required=False)}

    def output_spec(self) -> Spec:
        """Response, its tokens, log-probs and top alternatives (`TOP_ALTERNATIVES` per token),
        target log-probs, and mean-pooled embeddings."""
        return {
            "response": types.GeneratedText(parent="target"),
            "response_tokens": types.Tokens(parent="response"),
            "response_logprobs": types.TokenScores(align="response_tokens"),
            "response_top_tokens": types.TokenTopKPreds(align="response_tokens", required=False),
            "target_tokens": types.Tokens(parent="target", required=False),
            "target_logprobs": types.TokenScores(align="target_tokens", required=False),
            "prompt_embedding": types.Embeddings(),
            "response_embedding": types.Embeddings(),
        }

    def get_embedding_table(self) -> tuple[list[str], Any]:
        """(vocabulary pieces, `<float>[vocab_size, hidden_dim]` token embeddings)."""
        emb = np.asarray(self.causal_lm.backbone.token_embedding.embeddings)
        vocab = [self.tokenizer.id_to_token(i) for i in range(emb.shape[0])]
        return vocab, emb

    # -- tokenization -------------------------------------------------------------------------
    @property
    def adds_start_token(self) -> bool:
        """Whether the preprocessor puts the start token (<bos>) before the prompt."""
        return bool(getattr(self.preprocessor, "add_start_token", False)) and getattr(
            self.tokenizer, "start_token_id", None) is not None

    def pieces(self, ids: Sequence[int] | np.ndarray) -> list[str]:
        """Raw tokenizer pieces of `ids` (e.g. "▁world", "<0x0A>", "Ġworld").

        Ids the tokenizer does not know (an embedding table padded past the vocabulary) show as
        "<id:N>" and stand for no text.
        """
        out = []
        for i in ids:
            try:
                out.append(self.tokenizer.id_to_token(int(i)))
            except (ValueError, IndexError, KeyError):
                out.append(f"<id:{int(i)}>")
        return out

    def _ids_bytes(self, ids: Sequence[int] | np.ndarray) -> list[bytes | None]:
        return [None if int(i) in self._special_ids or p == f"<id:{int(i)}>"
                else piece_bytes(p, self._byte_level)
                for i, p in zip(ids, self.pieces(ids), strict=True)]

    def display_tokens(self, ids: Sequence[int] | np.ndarray) -> list[str]:
        """Cleaned display tokens ("▁" -> " ", bytes decoded; multi-byte characters joined)."""
        from promptlit.salience.aggregation import clean_tokens

        return clean_tokens(self.pieces(ids), byte_level=self._byte_level)

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """The text of `ids` (special tokens dropped), exactly what the offsets index."""
        return b"".join(b for b in self._ids_bytes(ids) if b).decode("utf-8", errors="replace")

    def tokenize_with_offsets(self, text: str, *, add_start_token: bool = False
                              ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Token ids, char offsets into `text`, and display tokens.

        Args:
            text: any string (newlines, repeated spaces, unicode).
            add_start_token: put the start token first (it gets the empty span [0, 0)).

        Returns:
            `(ids <int>[N], offsets <int>[N, 2], tokens list[str] of N)`; `text[s:e]` is the text
            of each token (modulo whitespace the tokenizer adds or normalises).
        """
        raw = self._text_to_ids(text)
        if add_start_token and self.adds_start_token:
            raw = np.concatenate([[int(self.tokenizer.start_token_id)], raw]).astype(np.int64)
        offsets = align_offsets(text, self._ids_bytes(raw.tolist()))
        return raw, offsets, self.display_tokens(raw.tolist())

    # -- chat templates -----------------------------------------------------------------------
    def template_for(self, override: str | chat.ChatTemplate | None = None
                     ) -> chat.ChatTemplate | None:
        """The chat template for one prompt: the model's own, or an example's override.

        Args:
            override: None or "auto" (the model's template), "none" (no template: the prompt
                is already formatted, or a base-model prompt), a built-in name, or a
                `promptlit.models.chat.ChatTemplate`. Paths are not accepted here (an example
                may not make the server read files); give them to the constructor.

        Raises:
            ValueError: any other value, with the allowed ones.
        """
        if override is None:
            return self.chat_template
        if isinstance(override, chat.ChatTemplate):
            return override
        key = chat.check_example_template(override)
        if key == chat.AUTO:
            return self.chat_template
        if key == chat.NONE:
            return None
        return chat.get_builtin(key)

    def format_prompt(self, prompt: PromptInput, *,
                      chat_template: str | chat.ChatTemplate | None = None) -> chat.Rendered:
        """The prompt text the model reads, with its template spans and the messages' turns.

        Args:
            prompt: a prompt text, or a conversation (`promptlit.models.chat.check_messages`).
            chat_template: a per-prompt override (`template_for`).

        A text prompt is wrapped as one user message, unless it already holds the template's turn
        markers (formatted by hand: only its template text is marked). A conversation without a
        template is read as a plain transcript (`promptlit.models.chat.transcript`). A start
        token the template writes first is dropped when the preprocessor adds it anyway.

        Raises:
            ValueError: bad messages or override (`promptlit.models.chat.ChatTemplateError`).
        """
        template = self.template_for(chat_template)
        if isinstance(prompt, str):
            if template is None:
                return chat.Rendered(prompt, (), (chat.Turn("user", 0, len(prompt), 0),), None)
            if template.is_formatted(prompt):
                rendered = template.mark(prompt)
            else:
                rendered = template.render([{"role": "user", "content": prompt}])
        else:
            template = template or chat.BUILTIN_TEMPLATES["transcript"]
            rendered = template.render(prompt)
        if self.adds_start_token and template.bos_token:
            rendered = rendered.strip_prefix(template.bos_token)
        return rendered

    def _control_splitter(self, template: chat.ChatTemplate | None) -> re.Pattern[str] | None:
        """A regex of the template's control texts that are single vocabulary tokens."""
        if template is None:
            return None
        known = [c for c in dict.fromkeys(template.control_tokens) if c and self._token_id(c)
                 is not None]
        if not known:
            return None
        return re.compile("|".join(re.escape(c) for c in sorted(known, key=len, reverse=True)))

    def _tokenize_piece(self, text: str, start: int, splitter: re.Pattern[str] | None
                        ) -> tuple[list[int], list[np.ndarray]]:
        """Ids and offsets (shifted by ``start``) of one piece; control texts become their token."""
        ids: list[int] = []
        offsets: list[np.ndarray] = []
        pos = 0
        cuts = list(splitter.finditer(text)) if splitter is not None else []
        for m in [*cuts, None]:
            stop = m.start() if m is not None else len(text)
            if stop > pos:
                sub = text[pos:stop]
                raw = self._text_to_ids(sub)
                ids += raw.tolist()
                offsets.append(align_offsets(sub, self._ids_bytes(raw.tolist())) + start + pos)
            if m is not None:
                token = self._token_id(m.group(0))
                assert token is not None
                ids.append(token)
                offsets.append(np.array([[start + m.start(), start + m.end()]], np.int64))
                pos = m.end()
        return ids, offsets

    def encode_prompt(self, prompt: PromptInput, *,
                      chat_template: str | chat.ChatTemplate | None = None) -> EncodedPrompt:
        """Tokens of the prompt as the model reads it (`format_prompt`), template tokens marked.

        Template text and the messages' text are tokenized separately (a token never straddles
        the two); control texts such as ``<start_of_turn>`` become their vocabulary token. Without
        a template this is exactly `tokenize_with_offsets(prompt, add_start_token=True)`.

        Returns:
            An `EncodedPrompt`: ``ids <int>[P]``, ``offsets <int>[P, 2]`` into its ``text``,
            ``template_mask <bool>[P]``.
        """
        template = self.template_for(chat_template)
        rendered = self.format_prompt(prompt, chat_template=chat_template)
        if rendered.template is None:  # no template at all: the prompt as it is
            ids, offsets, _ = self.tokenize_with_offsets(rendered.text, add_start_token=True)
            return EncodedPrompt(rendered.text, ids, offsets, np.zeros(len(ids), bool),
                                 rendered.turns, None)
        used = template or chat.BUILTIN_TEMPLATES["transcript"]
        splitter = self._control_splitter(used)
        ids_list: list[int] = []
        offsets_list: list[np.ndarray] = []
        mask: list[bool] = []
        if self.adds_start_token:
            ids_list.append(int(self.tokenizer.start_token_id))
            offsets_list.append(np.zeros((1, 2), np.int64))
            mask.append(True)
        for start, end, is_template in rendered.pieces():
            piece_ids, piece_offsets = self._tokenize_piece(
                rendered.text[start:end], start, splitter if is_template else None)
            ids_list += piece_ids
            offsets_list += piece_offsets
            mask += [is_template] * len(piece_ids)
        stop_ids, stop_texts = self._template_stops(used)
        return EncodedPrompt(
            rendered.text, np.asarray(ids_list, np.int64).reshape(-1),
            np.concatenate(offsets_list).reshape(-1, 2) if offsets_list
            else np.zeros((0, 2), np.int64),
            np.asarray(mask, bool), rendered.turns, rendered.template, stop_ids, stop_texts)

    def _encode(self, prompt: PromptInput, response: str,
                chat_template: str | chat.ChatTemplate | None
                ) -> tuple[EncodedPrompt, np.ndarray, np.ndarray, list[str]]:
        enc = self.encode_prompt(prompt, chat_template=chat_template)
        r_ids, r_off, _ = self.tokenize_with_offsets(response)
        ids = np.concatenate([enc.ids, r_ids]).astype(np.int64)
        offsets = np.concatenate([enc.offsets, r_off + len(enc.text)]).reshape(-1, 2)
        return enc, ids, offsets, self.display_tokens(ids.tolist())

    def encode_pair(self, prompt: PromptInput, response: str, *,
                    chat_template: str | chat.ChatTemplate | None = None
                    ) -> tuple[np.ndarray, np.ndarray, list[str], int]:
        """Tokens of `prompt + response`, tokenized separately so the boundary is exact.

        Args:
            prompt: a prompt text or a conversation; wrapped in the chat template
                (`encode_prompt`).
            response: the continuation.
            chat_template: a per-prompt override (`template_for`).

        Returns:
            `(ids <int>[N], offsets <int>[N, 2] into format_prompt(prompt).text + response,
            tokens, num_prompt_tokens)`; without a template the text is `prompt + response`.
        """
        enc, ids, offsets, tokens = self._encode(prompt, response, chat_template)
        return ids, offsets, tokens, int(enc.ids.shape[0])

    # -- generation ---------------------------------------------------------------------------
    def _backbone_limit(self) -> int:
        limit = getattr(self.preprocessor, "sequence_length", None) or self.max_length
        return int(min(self.max_length, limit)) if self.max_length else int(limit)

    def generate_ids(self, prompts: Sequence[PromptInput], *,
                     chat_templates: Sequence[str | chat.ChatTemplate | None] | None = None
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
        """`(prompt ids <int>[P], response ids <int>[R])` per prompt; R stops before the end token.

        Args:
            prompts: prompt texts or conversations, wrapped in the chat template
                (`encode_prompt`).
            chat_templates: per-prompt overrides (`template_for`), or None.

        Generation stops at the end-of-sequence token, at the template's end-of-turn token(s),
        and the response is cut at `stop_sequences` (and end-of-turn texts that are not tokens).
        """
        if not prompts:
            return []
        overrides = list(chat_templates) if chat_templates is not None else [None] * len(prompts)
        if len(overrides) != len(prompts):
            raise ValueError(f"generate_ids: {len(overrides)} chat_templates for {len(prompts)} "
                             "prompts; give one per prompt (or None).")
        encodings = [self.encode_prompt(p, chat_template=t)
                     for p, t in zip(prompts, overrides, strict=True)]
        return self._generate(encodings)

    def _generate(self, encodings: Sequence[EncodedPrompt]
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
        encoded = [e.ids for e in encodings]
        stop_ids = tuple(dict.fromkeys([*self._stop_ids,
                                        *(i for e in encodings for i in e.stop_ids)]))
        longest = max(len(e) for e in encoded)
        limit = self._backbone_limit()
        if longest >= limit:
            raise ValueError(f"{self.name}: a prompt has {longest} tokens, but max_length is "
                             f"{limit}; shorten the prompt or raise max_length.")
        length = min(limit, -(-(longest + self.max_new_tokens) // 32) * 32)
        pad = int(getattr(self.tokenizer, "pad_token_id", 0) or 0)
        token_ids = np.full((len(encoded), length), pad, np.int32)
        mask = np.zeros((len(encoded), length), bool)
        for row, ids in enumerate(encoded):
            token_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = True
        inputs: dict[str, Any] = {"token_ids": token_ids, "padding_mask": mask}
        if self.mesh is not None:  # the prompts split over the data axis (padded with copies)
            from promptlit import distributed

            rows = distributed.padded_batch(len(encoded), self.mesh)
            inputs = {k: distributed.shard_batch(np.concatenate([v, np.repeat(v[:1], rows - len(v),
                                                                              axis=0)]), self.mesh)
                      for k, v in inputs.items()}
        with self._lock:
            fn = self.causal_lm.make_generate_function()
            out = fn(inputs, stop_token_ids=stop_ids)
        out_ids = np.asarray(out["token_ids"])
        out_mask = np.asarray(out["padding_mask"]).astype(bool)
        results = []
        for row, (ids, enc) in enumerate(zip(encoded, encodings, strict=True)):
            gen = out_ids[row, len(ids):][out_mask[row, len(ids):]]
            stop = np.flatnonzero(np.isin(gen, stop_ids))
            if stop.size:
                gen = gen[: stop[0]]
            gen = self._cut_at_stop_sequence(gen[: self.max_new_tokens], enc.stop_texts)
            results.append((ids, gen.astype(np.int64)))
        return results

    def _cut_at_stop_sequence(self, gen: np.ndarray, extra: Sequence[str] = ()) -> np.ndarray:
        """`<int>[R]` -> its longest token prefix whose text ends before the first stop sequence
        (`stop_sequences` and ``extra``; a token that straddles the stop sequence's start is
        dropped with it)."""
        stops = (*self.stop_sequences, *extra)
        if not stops or gen.size == 0:
            return gen
        text = self.decode(gen)
        hits = [i for s in stops if (i := text.find(s)) >= 0]
        if not hits:
            return gen
        cut = min(hits)
        lo, hi = 0, int(gen.size)  # binary search: prefix text length grows with the prefix
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if len(self.decode(gen[:mid])) <= cut:
                lo = mid
            else:
                hi = mid - 1
        return gen[:lo]

    def generate(self, prompts: Sequence[PromptInput], *,
                 chat_templates: Sequence[str | chat.ChatTemplate | None] | None = None
                 ) -> list[str]:
        """Responses only (the prompt stripped, stopped at the end token, the template's
        end-of-turn token or a stop sequence). A prompt is a text or a conversation."""
        if isinstance(prompts, str):
            raise TypeError("generate() takes a list of prompts; wrap a single prompt in [...].")
        return [self.decode(r) for _, r in self.generate_ids(list(prompts),
                                                            chat_templates=chat_templates)]

    # -- scoring ------------------------------------------------------------------------------
    @property
    def forward(self) -> Any:
        """The model as pure JAX functions (`promptlit.salience.forward.lm_forward`), built once."""
        if self._forward is None:
            from promptlit.salience.forward import lm_forward

            with self._lock:
                if self._forward is None:
                    self._forward = lm_forward(self.causal_lm, mesh=self.mesh)
        return self._forward

    def _score(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(log-probs <float>[N] (entry 0 = 0), final hidden states <float>[N, D])`."""
        lp, h, _, _ = self._score_top(ids)
        return lp, h

    def _score_top(self, ids: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One jitted forward: `(log-probs <float>[N], hidden <float>[N, D], top ids <int>[N, K],
        top log-probs <float>[N, K])`; row ``p`` of the top-K is the model's K most likely
        tokens at position ``p`` (predicted from ``p - 1``; row 0 is zeros), K =
        `TOP_ALTERNATIVES` (fewer for a smaller vocabulary)."""
        import jax
        import jax.numpy as jnp

        from promptlit.salience.kernels import bucket_length

        fwd = self.forward
        n = int(ids.shape[0])
        nb = bucket_length(max(n, 1), fwd.max_positions)
        padded = np.zeros((nb,), np.int32)
        padded[:n] = ids
        mask = np.zeros((nb,), bool)
        mask[:n] = True
        run = fwd.cache.get("keras_lm.score_top")
        if run is None:
            @jax.jit
            def run(params: Any, tok: Any, m: Any) -> tuple[Any, Any, Any, Any]:
                e = fwd.embed(params, tok[None])
                if fwd.hidden is not None and fwd.head is not None:
                    h = fwd.hidden(params, e, m[None])
                    logits = fwd.head(params, h)
                else:
                    h = e
                    logits = fwd.logits(params, e, m[None])
                lsm = jax.nn.log_softmax(logits[0, :-1].astype(jnp.float32), axis=-1)
                lp = jnp.take_along_axis(lsm, tok[1:, None], axis=-1)[:, 0]
                k = min(TOP_ALTERNATIVES, lsm.shape[-1])
                top_lp, top_ids = jax.lax.top_k(lsm, k)
                zeros = jnp.zeros((1, k))
                return (jnp.concatenate([jnp.zeros((1,), lp.dtype), lp]), h[0].astype(jnp.float32),
                        jnp.concatenate([zeros.astype(top_ids.dtype), top_ids]),
                        jnp.concatenate([zeros.astype(top_lp.dtype), top_lp]))

            fwd.cache["keras_lm.score_top"] = run
        with self._lock:
            lp, h, top_ids, top_lp = run(fwd.params, padded, mask)
        return (np.asarray(lp)[:n], np.asarray(h)[:n], np.asarray(top_ids)[:n],
                np.asarray(top_lp)[:n])

    def top_tokens(self, prompt: PromptInput, response: str, *, k: int = TOP_ALTERNATIVES,
                   chat_template: str | chat.ChatTemplate | None = None
                   ) -> list[list[tuple[str, float]]]:
        """The model's ``k`` most likely tokens at each response position, with probabilities.

        Returns:
            One list per response token (``T`` of them), best first: ``[(display token,
            probability), ...]``, what the model would have written there instead (given the
            prompt and the response before that token). ``k`` <= `TOP_ALTERNATIVES`.
        """
        if not 1 <= int(k) <= TOP_ALTERNATIVES:
            raise ValueError(f"top_tokens: k must be between 1 and {TOP_ALTERNATIVES}, got {k}.")
        ids, _, _, p = self.encode_pair(prompt, response, chat_template=chat_template)
        if ids.shape[0] < 2 or ids.shape[0] == p:
            return []
        _, _, top_ids, top_lp = self._score_top(ids)
        return self._alternatives(top_ids[p:, : int(k)], top_lp[p:, : int(k)])

    def _alternatives(self, top_ids: np.ndarray, top_lp: np.ndarray
                      ) -> list[list[tuple[str, float]]]:
        """`<int>[T, K]`, `<float>[T, K]` -> per position ``[(display token, prob), ...]``."""
        return [[(self.display_tokens([int(i)])[0], float(np.exp(lp)))
                 for i, lp in zip(row_ids, row_lp, strict=True)]
                for row_ids, row_lp in zip(top_ids, top_lp, strict=True)]

    def log_probs(self, prompt: PromptInput, response: str, *,
                  chat_template: str | chat.ChatTemplate | None = None) -> np.ndarray:
        """`<float>[T]`: log p(response token t | prompt, earlier response tokens)."""
        ids, _, _, p = self.encode_pair(prompt, response, chat_template=chat_template)
        return self._score(ids)[0][p:]

    def _scored_output(self, prompt_ids: np.ndarray, cont_ids: np.ndarray
                       ) -> tuple[list[float], list[str], np.ndarray, np.ndarray]:
        logprobs, tokens, prompt_emb, cont_emb, _ = self._scored_output_top(prompt_ids, cont_ids)
        return logprobs, tokens, prompt_emb, cont_emb

    def _scored_output_top(self, prompt_ids: np.ndarray, cont_ids: np.ndarray
                           ) -> tuple[list[float], list[str], np.ndarray, np.ndarray,
                                      list[list[tuple[str, float]]]]:
        """`_scored_output` plus the top `TOP_ALTERNATIVES` tokens at each continuation token."""
        ids = np.concatenate([prompt_ids, cont_ids]).astype(np.int64)
        p = int(prompt_ids.shape[0])
        alternatives: list[list[tuple[str, float]]] = []
        if ids.shape[0] < 2:
            lp, h = np.zeros((ids.shape[0],)), None
        else:
            lp, h, top_ids, top_lp = self._score_top(ids)
            alternatives = self._alternatives(top_ids[p:], top_lp[p:])
        if h is None:
            dim = int(self.causal_lm.backbone.hidden_dim)
            h = np.zeros((ids.shape[0], dim), np.float32)
        prompt_emb = h[:p].mean(axis=0) if p else np.zeros(h.shape[1], np.float32)
        cont_emb = h[p:].mean(axis=0) if ids.shape[0] > p else np.zeros(h.shape[1], np.float32)
        return ([float(x) for x in lp[p:]], self.display_tokens(cont_ids.tolist()), prompt_emb,
                cont_emb, alternatives)

    @staticmethod
    def prompt_of(example: Mapping[str, Any]) -> PromptInput:
        """What the model reads from an example (`promptlit.models.chat.example_prompt`): its
        ``messages`` when it has them (and its ``prompt`` is still their transcript), else its
        ``prompt``."""
        return chat.example_prompt(example)

    def predict_minibatch(self, inputs: list[JsonDict], **kw: Any) -> list[JsonDict]:
        """Generates and scores a minibatch (see `output_spec`).

        Each example's ``messages`` (if any) are the conversation to answer, else its ``prompt``
        (`prompt_of`); its ``chat_template`` (if any) overrides the model's template
        (`template_for`).
        """
        del kw
        generated = self.generate_ids([self.prompt_of(ex) for ex in inputs],
                                      chat_templates=[ex.get("chat_template") for ex in inputs])
        outputs = []
        for ex, (p_ids, r_ids) in zip(inputs, generated, strict=True):
            logprobs, tokens, prompt_emb, resp_emb, top = self._scored_output_top(p_ids, r_ids)
            out: JsonDict = {
                "response": self.decode(r_ids.tolist()),
                "response_tokens": tokens,
                "response_logprobs": logprobs,
                "response_top_tokens": top,
                "prompt_embedding": prompt_emb,
                "response_embedding": resp_emb,
            }
            target = ex.get("target")
            if isinstance(target, str) and target:
                t_ids = self.tokenize_with_offsets(target)[0]
                t_lp, t_tokens, _, _ = self._scored_output(p_ids, t_ids)
                out["target_tokens"] = t_tokens
                out["target_logprobs"] = t_lp
            outputs.append(out)
        return outputs

    # -- salience -----------------------------------------------------------------------------
    def salience(self, prompt: PromptInput, response: str, *,
                 chat_template: str | chat.ChatTemplate | None = None,
                 methods: Sequence[str] = MATRIX_METHODS, ig_steps: int = 16,
                 full_matrix: bool = True, span: tuple[int, int] | None = None,
                 chunk_size: int | None = None, ig_baseline: str | int = "zero",
                 ig_steps_per_call: int | None = None,
                 progress: Callable[[float, str], None] | None = None,
                 contrast: str | None = None) -> Any:
        """Sequence salience of `prompt + response` (a `promptlit.salience.result.SequenceSalience`).

        Args:
            prompt: the prompt text, or a conversation; wrapped in the chat template like for
                generation (`encode_prompt`).
            response: the continuation to explain (the model's response or a reference).
            chat_template: a per-prompt override of the model's template (`template_for`).
            methods: any of "grad_l2", "grad_dot_input", "integrated_gradients".
            ig_steps: midpoint-rule steps for Integrated Gradients.
            full_matrix: compute the full `<float>[T, N]` matrix for every requested method
                (for IG only when no `span` is given: an IG matrix costs `ig_steps` x a gradient
                matrix).
            span: `(start, stop)` response-token indices; each requested method without a matrix
                gets its salience for that span computed directly (`kernels.span_salience`), in
                `span_scores[(method, start, stop)]` (`<float>[N]`). IG is computed this way.
            chunk_size: most targets per vmapped backward pass (memory bound); None plans it
                from the device's free memory (`kernels.salience_matrix`).
            ig_baseline: IG's baseline: "zero" (all-zero embeddings) or a token id whose
                embedding fills every position (see `promptlit.salience.kernels`).
            ig_steps_per_call: the most IG steps one compiled call evaluates (default
                `kernels.IG_STEPS_PER_CALL`); more steps run as several calls, summed exactly.
            progress: called as `progress(fraction, message)` between compiled calls (fraction
                of this call's work, reaching 1.0 at the end). If it raises (e.g.
                `promptlit.lib.cancel.Cancelled` for a client that went away), the work stops at
                the next call boundary and the exception propagates; nothing is returned.
            contrast: an alternative continuation B for the response span A (``span``, default
                the whole response): "why A rather than B?". Every requested method is then
                computed for ``f = log p(A | prefix) - log p(B | prefix)`` (prefix = the prompt
                and the response before the span; B is tokenized like a response and replaces A
                there) by `promptlit.salience.contrast.contrast_salience`: one compiled call over
                both sequences. The result holds no matrices, only ``span_scores[(method, start,
                stop)]``; signed methods are positive where a token pushes toward A, negative
                toward B (Grad L2 is the norm of the gradient of f: no direction). Its
                ``metadata["contrast"]`` holds ``text``, ``start``, ``stop``, B's ``tokens`` and
                both ``log_prob`` / ``log_prob_contrast``, and ``settings_for(method)["contrast"]``
                is B's text, so contrastive scores never mix with plain ones
                (`SequenceSalience.with_span_scores` refuses).

        Returns:
            `SequenceSalience` with `text = prompt text + response` (the prompt text as the model
            reads it, `format_prompt`; exactly ``prompt`` without a template), `N` tokens (prompt
            with <bos>, then response), `matrices[method]` `<float>[T, N]`, `span_scores` and
            ``template_mask <bool>[N]`` (template tokens: their salience is computed like any
            other's, the views leave them out of rankings and colour ranges by default); its
            ``settings_for("integrated_gradients")`` records the IG steps and baseline, its
            ``metadata["chat_template"]`` the template's name ("none" without one) and, with a
            template, ``metadata["turns"]`` each message's ``[role, start, end]`` in ``text``.

        Raises:
            ValueError: empty response, unknown method, a span outside the response or a bad
                baseline.
        """
        from promptlit.salience import kernels

        methods = check_methods(methods, "salience")
        use_ig = "integrated_gradients" in methods
        if use_ig and int(ig_steps) < 1:
            raise ValueError(f"salience: ig_steps must be >= 1 for integrated_gradients, got "
                             f"{ig_steps}.")
        baseline = kernels._check_baseline(ig_baseline, "salience") if use_ig else "zero"
        steps_per_call = (kernels.IG_STEPS_PER_CALL if ig_steps_per_call is None
                          else int(ig_steps_per_call))
        enc, ids, offsets, tokens = self._encode(prompt, response, chat_template)
        p = int(enc.ids.shape[0])
        n = int(ids.shape[0])
        t = n - p
        if t < 1:
            raise ValueError("salience: the response is empty (it has no tokens); generate a "
                             "response first or pass a non-empty target.")
        if p < 1:
            raise ValueError("salience: the prompt has no tokens and the model adds no start "
                             "token, so the first response token has no prediction to explain.")
        start = stop = 0
        if span is not None:
            start, stop = int(span[0]), int(span[1])
            if not 0 <= start < stop <= t:
                raise ValueError(f"salience: span {span} must satisfy 0 <= start < stop <= {t} "
                                 "(response-token indices, stop exclusive).")
        if contrast is not None:
            return self._contrast_salience(
                enc, ids, offsets, tokens, contrast, (start, stop) if span is not None else
                (0, t), methods=methods, ig_steps=int(ig_steps), baseline=baseline,
                steps_per_call=steps_per_call, progress=progress, response=response)
        in_matrix = tuple(m for m in methods if m != "integrated_gradients" or span is None
                          ) if full_matrix else ()
        span_methods = tuple(m for m in methods if m not in in_matrix) if span is not None else ()
        # Progress: each phase gets a share of [0, 1] by its cost in backward passes.
        cost_matrix = t * (1 + (int(ig_steps) if "integrated_gradients" in in_matrix else 0))
        cost_span = (int(ig_steps) if "integrated_gradients" in span_methods else 0) + any(
            m != "integrated_gradients" for m in span_methods)
        total = max(cost_matrix * bool(in_matrix) + cost_span * bool(span_methods), 1)
        split = cost_matrix * bool(in_matrix) / total
        fwd = self.forward
        matrices: dict[str, np.ndarray] = {}
        if in_matrix:
            with self._lock:
                matrices = kernels.salience_matrix(
                    fwd, ids.astype(np.int32), np.arange(p, n, dtype=np.int32),
                    methods=in_matrix,
                    ig_steps=int(ig_steps) if "integrated_gradients" in in_matrix else 0,
                    chunk_size=chunk_size, ig_baseline=baseline,
                    ig_steps_per_call=steps_per_call,
                    progress=_scaled(progress, 0.0, split))
        span_scores: dict[tuple[str, int, int], np.ndarray] = {}
        if span_methods:
            mask = np.zeros((n,), bool)
            mask[p + start: p + stop] = True
            with self._lock:
                scores = kernels.span_salience(
                    fwd, ids.astype(np.int32), mask, methods=span_methods,
                    ig_steps=int(ig_steps) if use_ig else 0, ig_baseline=baseline,
                    ig_steps_per_call=steps_per_call, progress=_scaled(progress, split, 1.0))
            span_scores = {(m, start, stop): scores[m] for m in span_methods}
        return self._sequence_salience(enc, response, offsets, tokens, methods, matrices,
                                       span_scores, ig_steps=int(ig_steps), baseline=baseline)

    def _sequence_salience(self, enc: EncodedPrompt, response: str, offsets: np.ndarray,
                           tokens: list[str], methods: tuple[str, ...],
                           matrices: Mapping[str, np.ndarray],
                           span_scores: Mapping[tuple[str, int, int], np.ndarray], *,
                           ig_steps: int, baseline: Any) -> Any:
        """The `SequenceSalience` `salience` returns, from computed matrices / span scores."""
        from promptlit.salience import kernels
        from promptlit.salience.result import SequenceSalience

        p = int(enc.ids.shape[0])
        t = int(offsets.shape[0]) - p
        metadata: JsonDict = {"model": self.name, "handle": self.handle, "methods": list(methods),
                              "chat_template": enc.template or chat.NONE}
        if enc.template is not None:
            metadata["turns"] = [[t.role, t.start, t.end] for t in enc.turns]
        if "integrated_gradients" in methods:
            metadata["settings"] = {"integrated_gradients": {"ig_steps": int(ig_steps),
                                                             "ig_baseline": baseline}}
        template_mask = np.concatenate([enc.template_mask, np.zeros(t, bool)])
        return SequenceSalience(
            text=enc.text + response, prompt_length=len(enc.text), tokens=tokens,
            offsets=offsets, num_prompt_tokens=p, matrices=matrices, span_scores=span_scores,
            signed={m: kernels.SIGNED[m] for m in methods}, metadata=metadata,
            template_mask=template_mask)

    def salience_batch(self, prompts: Sequence[PromptInput], responses: Sequence[str], *,
                       chat_templates: Sequence[str | chat.ChatTemplate | None] | None = None,
                       methods: Sequence[str] = MATRIX_METHODS, ig_steps: int = 16,
                       chunk_size: int | None = None, ig_baseline: str | int = "zero",
                       batch_size: int | None = None) -> list[Any]:
        """`salience(prompt, response, methods=...)` for several pairs in one compiled call.

        The whole `<float>[T, N]` matrix of every requested method (Integrated Gradients
        included, with ``ig_steps``) for each pair, by `kernels.salience_matrix_batch`: the
        pairs are padded to the length bucket of the longest and to ``batch_size`` rows, so a
        dataset compiles once per (bucket, batch size). Each result equals
        ``salience(prompt, response, methods=methods, ig_steps=ig_steps)`` up to float rounding
        (``promptlit explain`` uses this; `tests/test_bulk.py` checks it against the Workbench).

        Args:
            prompts: prompt texts or conversations. responses: one continuation per prompt.
            chat_templates: per-prompt template overrides (`template_for`), or None.
            methods, ig_steps, chunk_size, ig_baseline: as for `salience` (no span, no
                contrast: full matrices only).
            batch_size: rows of the compiled call (default: the number of pairs).

        Returns:
            One `SequenceSalience` per pair, in order.
        """
        from promptlit.salience import kernels

        methods = check_methods(methods, "salience_batch")
        if len(responses) != len(prompts):
            raise ValueError(f"salience_batch: {len(prompts)} prompts but {len(responses)} "
                             "responses; give one response per prompt.")
        overrides = list(chat_templates) if chat_templates is not None else [None] * len(prompts)
        use_ig = "integrated_gradients" in methods
        baseline = kernels._check_baseline(ig_baseline, "salience") if use_ig else "zero"
        encoded = []
        for i, (prompt, response, template) in enumerate(
                zip(prompts, responses, overrides, strict=True)):
            enc, ids, offsets, tokens = self._encode(prompt, response, template)
            if ids.shape[0] - enc.ids.shape[0] < 1:
                raise ValueError(f"salience_batch: response {i} is empty (it has no tokens); "
                                 "only non-empty responses can be explained.")
            if enc.ids.shape[0] < 1:
                raise ValueError(f"salience_batch: prompt {i} has no tokens and the model adds "
                                 "no start token.")
            encoded.append((enc, ids, offsets, tokens))
        with self._lock:
            found = kernels.salience_matrix_batch(
                self.forward, [ids.astype(np.int32) for _, ids, _, _ in encoded],
                [np.arange(enc.ids.shape[0], ids.shape[0], dtype=np.int32)
                 for enc, ids, _, _ in encoded],
                methods=methods, ig_steps=int(ig_steps) if use_ig else 0,
                chunk_size=chunk_size, ig_baseline=baseline, batch_size=batch_size)
        return [self._sequence_salience(enc, response, offsets, tokens, methods, matrices, {},
                                        ig_steps=int(ig_steps), baseline=baseline)
                for (enc, _, offsets, tokens), response, matrices
                in zip(encoded, responses, found, strict=True)]

    def _contrast_salience(self, enc: EncodedPrompt, ids: np.ndarray, offsets: np.ndarray,
                           tokens: list[str], contrast: str, span: tuple[int, int], *,
                           methods: tuple[str, ...], ig_steps: int, baseline: Any,
                           steps_per_call: int, progress: Callable[[float, str], None] | None,
                           response: str) -> Any:
        """`salience(..., contrast=...)`: the contrastive scores of ``span`` against B."""
        from promptlit.salience.contrast import contrast_salience
        from promptlit.salience.kernels import SIGNED
        from promptlit.salience.result import SequenceSalience

        if not isinstance(contrast, str) or not contrast:
            raise ValueError("salience: contrast must be a non-empty text (the alternative "
                             f"continuation B), got {contrast!r}.")
        b_ids = self.tokenize_with_offsets(contrast)[0]
        if b_ids.size == 0:
            raise ValueError(f"salience: the contrast {contrast!r} has no tokens; type the "
                             "alternative continuation B (e.g. ' Avoid').")
        p = int(enc.ids.shape[0])
        n = int(ids.shape[0])
        start, stop = span
        mask = np.zeros((n,), bool)
        mask[p + start: p + stop] = True
        use_ig = "integrated_gradients" in methods
        with self._lock:
            out = contrast_salience(
                self.forward, ids.astype(np.int32), mask, b_ids.astype(np.int32),
                methods=methods, ig_steps=ig_steps if use_ig else 0, ig_baseline=baseline,
                ig_steps_per_call=steps_per_call, progress=progress)
        settings: dict[str, Any] = {m: {"contrast": contrast} for m in methods}
        if use_ig:
            settings["integrated_gradients"].update(ig_steps=ig_steps, ig_baseline=baseline)
        metadata: JsonDict = {
            "model": self.name, "handle": self.handle, "methods": list(methods),
            "chat_template": enc.template or chat.NONE, "settings": settings,
            "contrast": {"text": contrast, "start": int(start), "stop": int(stop),
                         "tokens": self.display_tokens(b_ids.tolist()),
                         "log_prob": float(out["log_prob"]),
                         "log_prob_contrast": float(out["log_prob_contrast"])}}
        if enc.template is not None:
            metadata["turns"] = [[t.role, t.start, t.end] for t in enc.turns]
        template_mask = np.concatenate([enc.template_mask, np.zeros(n - p, bool)])
        return SequenceSalience(
            text=enc.text + response, prompt_length=len(enc.text), tokens=tokens,
            offsets=offsets, num_prompt_tokens=p, matrices={},
            span_scores={(m, int(start), int(stop)): out[m] for m in methods},
            signed={m: SIGNED[m] for m in methods}, metadata=metadata,
            template_mask=template_mask)

    # -- attention ----------------------------------------------------------------------------
    def attention(self, prompt: PromptInput, response: str, *,
                  chat_template: str | chat.ChatTemplate | None = None,
                  span: tuple[int, int] | None = None) -> Any:
        """Attention weights from the positions that wrote the response, per layer and head.

        Args:
            prompt: the prompt text or a conversation (wrapped like for `salience`).
            response: the continuation (the model's response or a reference).
            chat_template: a per-prompt override (`template_for`).
            span: ``(start, stop)`` response-token indices: keep only those rows (memory
                ``L x H x (stop - start) x N`` floats instead of ``L x H x T x N``; for long
                responses of large models). None: the whole response.

        Returns:
            A `promptlit.salience.attention.AttentionMaps`: ``weights <float32>[L, H, S, N]``,
            row ``i`` the attention of the position predicting response token ``start + i``
            over all ``N`` tokens (prompt with its start token, then response), computed
            through the same cut graph as salience
            (`promptlit.salience.attention.attention_maps`); its ``salience`` (a
            `SequenceSalience`; for the whole response with ``matrices["attention"]``, the
            average over layers and heads) carries text, tokens and offsets for aggregation.

        Raises:
            ValueError: empty response, a prompt without tokens, or a span outside the response.
        """
        from promptlit.salience.attention import AttentionMaps, attention_maps
        from promptlit.salience.result import SequenceSalience

        enc, ids, offsets, tokens = self._encode(prompt, response, chat_template)
        p = int(enc.ids.shape[0])
        n = int(ids.shape[0])
        if n - p < 1:
            raise ValueError("attention: the response is empty (it has no tokens); generate a "
                             "response first or pass a non-empty target.")
        if p < 1:
            raise ValueError("attention: the prompt has no tokens and the model adds no start "
                             "token, so the first response token has no position that wrote it.")
        start, stop = (0, n - p) if span is None else (int(span[0]), int(span[1]))
        if not 0 <= start < stop <= n - p:
            raise ValueError(f"attention: span {span} must satisfy 0 <= start < stop <= "
                             f"{n - p} (response-token indices, stop exclusive).")
        with self._lock:
            weights = attention_maps(self.forward, ids.astype(np.int32),
                                     np.arange(p - 1 + start, p - 1 + stop, dtype=np.int32))
        metadata: JsonDict = {"model": self.name, "handle": self.handle,
                              "chat_template": enc.template or chat.NONE,
                              "layers": int(weights.shape[0]), "heads": int(weights.shape[1])}
        if enc.template is not None:
            metadata["turns"] = [[t.role, t.start, t.end] for t in enc.turns]
        sal = SequenceSalience(
            text=enc.text + response, prompt_length=len(enc.text), tokens=tokens,
            offsets=offsets, num_prompt_tokens=p,
            matrices={"attention": weights.mean(axis=(0, 1))} if span is None else {},
            signed={"attention": False}, metadata=metadata,
            template_mask=np.concatenate([enc.template_mask, np.zeros(n - p, bool)]))
        return AttentionMaps(sal, weights, start)


def _scaled(progress: Callable[[float, str], None] | None, lo: float, hi: float
            ) -> Callable[[float, str], None] | None:
    """`progress` for one phase of the work: its fractions mapped onto ``[lo, hi]``."""
    if progress is None:
        return None

    def report(fraction: float, message: str) -> None:
        progress(hi if fraction >= 1.0 else lo + fraction * (hi - lo), message)

    return report
