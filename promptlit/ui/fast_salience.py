"""Clicks that need no round trip: the salience view re-aggregated in the browser.

With a span's matrix cached, a click on a response token or a granularity switch changes only
which rows of the target×source matrix are summed and how the prompt tokens are grouped. Instead
of a queued Gradio round trip and a server re-render per click (90–210 ms), the page receives,
once per explained example, the matrices of the matrix methods and every granularity's segment
map (`client_data`), and `FAST_JS` sums, normalises, colours and ranks in the browser exactly as
`promptlit.salience.result.SpanSalience.aggregate` and `promptlit.ui.render` do on the server
(same float64 sums in the same order, same formatting; `tests/e2e/test_fast_clicks.py` compares
them on the embedded model).

What travels (`client_data`), per matrix method: the matrix as little-endian float32 (what the
kernels compute: lossless; float64 when the matrix holds values float32 would round), row ``t`` cut after its last non-zero entry (a causal
LM's row ``t`` is zero past its own position, so about half of the response × response block is
not sent), base64; per granularity: each prompt token's segment index and each segment's
characters, label, text and one-line form (computed here, so the browser never segments text);
the response tokens' segment map. Larger than `MAX_CLIENT_FLOATS` matrix entries: no fast path
(clicks go to the server as before).

Model calls stay on the server: the fast path is taken only for the matrix methods, without a
contrast B and with the attention view off; anything else (Integrated Gradients, "why A rather
than B?", the attention view, a custom granularity the example cannot resolve) falls back to the
server path. The server stays the source of truth: each fast click still sends one light event
carrying the selection the page now shows (an *ack*, `parse_ack`), which the server adopts into
the `SessionState` (links, sharing and the other modules read it) and answers with everything
but the already drawn view and ranking (the info line, the target dropdown, the matrix, the
comparison). Acks carry the render revision they were made on and a sequence number, so a late
one never overrides a newer selection.

Security: every text the browser shows comes from the server's own segmentation of the
example and is set with ``textContent`` / ``setAttribute`` (never parsed as HTML); the ack the
browser sends back is bounded and checked field by field before it touches the state.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import numpy as np

from promptlit.lib.segmentation import ALL_GRANULARITIES, resolve_granularity
from promptlit.salience.aggregation import TemplateSegment, aggregate, assign_tokens
from promptlit.ui import render

__all__ = ["FAST_JS", "GRANULARITY_JS", "MAX_CLIENT_FLOATS", "client_data", "data_key",
           "parse_ack", "row_lengths"]

MAX_CLIENT_FLOATS = 1_048_576
"""At most this many matrix entries (all methods together, after cutting rows) go to the page:
4 MiB of float32, about 5.6 MB as base64. Larger examples keep the server path."""

MAX_ACK_CHARS = 1_000
"""An ack longer than this is ignored (it is a few dozen characters)."""


def data_key(model: str, example_id: Any, target: str, sal: Any, separator: str) -> str:
    """A short key naming the data `client_data` builds: it changes with the model, the
    example (and its text), what is explained and the "blocks" separator."""
    h = hashlib.sha1(usedforsecurity=False)
    for part in (model, str(example_id), target, sal.text, str(len(sal.tokens)), separator,
                 ",".join(sorted(sal.matrices))):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def row_lengths(matrix: np.ndarray) -> np.ndarray:
    """``<int>[T]``: for each row, one past its last non-zero entry. (numpy's row sums start
    from ``+0.0``, so a trailing ``±0.0`` changes no sum and need not be sent.)"""
    m = np.asarray(matrix)
    keep = m != 0
    any_kept = keep.any(axis=1)
    last = m.shape[1] - np.argmax(keep[:, ::-1], axis=1)
    return np.where(any_kept, last, 0).astype(np.int64)


def _segment_rows(segs: list[Any]) -> list[list[Any]]:
    rows = []
    for s in segs:
        label = str(getattr(s, "label", "") or "")
        text = str(s.text)
        one = render._one_line(text, 60) if label else render._one_line(text)  # noqa: SLF001
        rows.append([int(s.start), int(s.end), 1 if isinstance(s, TemplateSegment) else 0,
                     label, text, one, 0 if text.strip() else 1])
    return rows


def client_data(sal: Any, ex: dict, *, key: str, methods: tuple[str, ...],
                separator: str = "") -> dict[str, Any] | None:
    """What the page needs to redraw the salience view for any span and granularity.

    Returns None when the matrices are larger than `MAX_CLIENT_FLOATS` (or there are none).

    Keys: ``key``; ``text`` (the whole text: the browser indexes it by code points, as Python
    does); ``p`` prompt tokens, ``n`` all tokens, ``t`` response tokens, ``plen`` prompt
    characters; ``methods``: ``{method: {"signed", "lens": [T], "bytes", "b64"}}`` (rows cut
    at `row_lengths`, concatenated, little-endian float32, or float64 where float32 would
    round); ``grans``: ``{granularity: {"name":
    str(granularity), "of": [p], "segs": [[start, end, template, label, text, one_line,
    blank], ...]}}`` for every granularity that resolves for ``ex``; ``resp``: ``{"of": [t],
    "n": segments}`` (the response at "tokens", as the view colours it).
    """
    p, n, t = int(sal.num_prompt_tokens), len(sal.tokens), int(sal.num_response_tokens)
    mats = {m: np.asarray(sal.matrices[m]) for m in methods if m in sal.matrices}
    if not mats or t == 0:
        return None
    lens = {m: row_lengths(x) for m, x in mats.items()}
    if sum(int(v.sum()) for v in lens.values()) > MAX_CLIENT_FLOATS:
        return None
    out_methods = {}
    for m, x in mats.items():
        # float32 when that is exact (the kernels' dtype), else float64: the browser's sums
        # must be the server's to the last bit.
        dtype = "<f4" if np.array_equal(x.astype("<f4").astype(x.dtype), x) else "<f8"
        xs = np.ascontiguousarray(x, dtype=dtype)
        rows = [xs[i, : int(lens[m][i])] for i in range(t)]
        flat = np.concatenate(rows) if rows else np.zeros(0, dtype)
        out_methods[m] = {"signed": bool(sal.signed.get(m, False)),
                          "lens": lens[m].tolist(), "bytes": 4 if dtype == "<f4" else 8,
                          "b64": base64.b64encode(flat.tobytes()).decode("ascii")}
    offsets = np.asarray(sal.offsets)
    mask = np.asarray(sal.template_mask, dtype=bool)
    prompt_range = (0, int(sal.prompt_length))
    grans: dict[str, Any] = {}
    for g in ALL_GRANULARITIES:
        try:
            gran = resolve_granularity(g, example=ex, separator=separator)
            _, of = assign_tokens(offsets[:p], sal.text, gran, char_range=prompt_range,
                                  template_mask=mask[:p])
            segs = aggregate(np.zeros(p), offsets[:p], sal.text, gran, char_range=prompt_range,
                             tokens=list(sal.tokens[:p]), template_mask=mask[:p])
        except (ValueError, KeyError, TypeError):
            continue  # a custom granularity this example cannot resolve: the server says why
        grans[g] = {"name": str(gran), "of": of.tolist(), "segs": _segment_rows(segs)}
    resp_spans, resp_of = assign_tokens(offsets[p:], sal.text, "tokens",
                                        char_range=(int(sal.prompt_length), len(sal.text)),
                                        template_mask=mask[p:])
    return {"key": key, "text": sal.text, "p": p, "n": n, "t": t,
            "plen": int(sal.prompt_length), "methods": out_methods, "grans": grans,
            "resp": {"of": resp_of.tolist(), "n": len(resp_spans)}}


def parse_ack(raw: Any, *, t: int) -> dict[str, Any] | None:
    """The page's ack of a fast redraw, checked field by field; None when it is not one.

    ``raw`` is a dict (a click's event data) or its JSON text (the granularity event). A valid
    ack has ``key`` (str), ``rev`` and ``seq`` (ints >= 0), ``gran`` (a granularity name),
    ``span`` ``[a, b]`` with ``0 <= a < b <= t`` and ``anchor`` (an int in ``[0, t)`` or None).
    """
    if isinstance(raw, str):
        if not raw or len(raw) > MAX_ACK_CHARS:
            return None
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    if not isinstance(raw, dict):
        return None
    key, rev, seq, gran = raw.get("key"), raw.get("rev"), raw.get("seq"), raw.get("gran")
    span, anchor = raw.get("span"), raw.get("anchor")

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if not (isinstance(key, str) and len(key) <= 64 and gran in ALL_GRANULARITIES):
        return None
    if not (isinstance(rev, int) and is_int(rev) and isinstance(seq, int) and is_int(seq)
            and rev >= 0 and seq >= 0):
        return None
    if not (isinstance(span, list) and len(span) == 2 and all(is_int(v) for v in span)
            and 0 <= span[0] < span[1] <= t):
        return None
    if anchor is not None and not (is_int(anchor) and 0 <= anchor < t):
        return None
    return {"key": key, "rev": rev, "seq": seq, "gran": gran, "span": (span[0], span[1]),
            "anchor": anchor}


# The browser side. Installed by the salience view's js_on_load (``element``: the view's root,
# ``props.pl_data``: `client_data`, ``trigger``: Gradio's event trigger). Mirrors, line for line:
# SequenceSalience.for_span (float64 row sums in row order), aggregate (np.add.at in token
# order), normalize_for_display, render.colour_for / text_colour_for / _fmt ("{:.4g}") /
# "{:.3f}", salience_view_html, _heatmap_prenormalized, _response_tokens_coloured,
# rank_segments and ranked_table_html. Text only through textContent / setAttribute.
FAST_JS = r"""
const PL = {};
window.promptlitSalience = PL;
const POS = [33, 102, 172], NEG = [178, 24, 43], SEQ = [106, 61, 154];
let decoded = {key: null};
let local = null;
let seq = 0;
PL.disabled = false;

function config() {
  const el = element.querySelector('.pl-fast');
  if (!el) return null;
  try { return JSON.parse(el.getAttribute('data-config')); } catch (e) { return null; }
}
function data(cfg) {
  const d = props.pl_data;
  if (!cfg || !d || d.key !== cfg.key) return null;
  if (decoded.key !== d.key) {
    const out = {key: d.key, cps: Array.from(d.text), m: {}};
    for (const [name, m] of Object.entries(d.methods)) {
      const bin = atob(m.b64);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      const v = m.bytes === 8 ? new Float64Array(bytes.buffer) : new Float32Array(bytes.buffer);
      const off = new Array(m.lens.length);
      let o = 0;
      for (let i = 0; i < m.lens.length; i++) { off[i] = o; o += m.lens[i]; }
      out.m[name] = {v, off, lens: m.lens, signed: m.signed};
    }
    decoded = out;
  }
  return d;
}
function current() {
  const cfg = config();
  if (!cfg || !cfg.fast || PL.disabled) return null;
  const d = data(cfg);
  if (!d || !decoded.m[cfg.method]) return null;
  if (!local || local.rev !== cfg.rev)
    local = {rev: cfg.rev, span: cfg.span.slice(), anchor: cfg.anchor, gran: cfg.gran};
  return {cfg, d};
}
// SequenceSalience.for_span: float64 sums of rows start..stop-1, in row order, from +0.0.
function spanScores(d, method, a, b) {
  const M = decoded.m[method], n = d.n, acc = new Float64Array(n);
  for (let t = a; t < b; t++) {
    const off = M.off[t], len = M.lens[t], v = M.v;
    if (t === a) { for (let j = 0; j < len; j++) acc[j] = v[off + j]; }
    else {
      for (let j = 0; j < len; j++) acc[j] += v[off + j];
      for (let j = len; j < n; j++) acc[j] += 0;
    }
  }
  return acc;
}
function totals(scores, of, count, shift) {
  const out = new Float64Array(count);
  for (let i = 0; i < of.length; i++) if (of[i] >= 0) out[of[i]] += scores[shift + i];
  return out;
}
function normalize(xs, signed) {
  const x = xs.map(v => Number.isFinite(v) ? (signed ? v : Math.max(v, 0)) : 0);
  let scale = 0;
  for (const v of x) scale = Math.max(scale, Math.abs(v));
  return x.map(v => scale > 0 ? v / scale : 0);
}
// Python's f"{x:.{d}f}" (round half to even on exact binary ties; JS's toFixed rounds them up).
function fixed(x, d) {
  const neg = x < 0 || Object.is(x, -0), a = Math.abs(x);
  let s = a.toFixed(d);
  const big = Number(s.replace('.', ''));
  const p5 = Math.pow(5, d), p10 = Math.pow(10, d);
  if (big > 0 && (2 * big - 1) % p5 === 0 && a === (2 * big - 1) / (2 * p10) && big % 2 === 1)
    s = ((big - 1) / p10).toFixed(d);
  return (neg ? '-' : '') + s;
}
function strip(s) { return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s; }
// Python's f"{x:.4g}".
function fmt(x) {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const neg = x < 0, a = Math.abs(x);
  const [mant, ex] = a.toExponential(3).split('e');
  const e = parseInt(ex, 10);
  let body;
  if (e < -4 || e >= 4) body = strip(mant) + 'e' + (e < 0 ? '-' : '+') + String(Math.abs(e)).padStart(2, '0');
  else body = strip(fixed(a, 3 - e));
  return (neg ? '-' : '') + body;
}
function colour(value, signed, intensity) {
  const v = (Number.isFinite(value) ? value : 0) * intensity;
  let rgb, alpha;
  if (signed) { rgb = v >= 0 ? POS : NEG; alpha = Math.min(Math.abs(v), 1); }
  else { rgb = SEQ; alpha = Math.min(Math.max(v, 0), 1); }
  return 'rgba(' + rgb[0] + ',' + rgb[1] + ',' + rgb[2] + ',' + fixed(alpha, 3) + ')';
}
function textColour(value, signed, intensity) {
  let v = Math.abs((Number.isFinite(value) ? value : 0) * intensity);
  if (!signed && value < 0) v = 0;
  return v > 0.6 ? '#fff' : 'inherit';
}
function style(c, signed, intensity) {
  return 'background-color:' + colour(c, signed, intensity) + ';color:' + textColour(c, signed, intensity);
}
// Exact segment scores of a span: [{seg, score}] in text order (what aggregate() returns).
PL.aggregate = function (method, a, b, gran) {
  const cur = current();
  const d = cur ? cur.d : data(config());
  if (!d || !decoded.m[method] || !d.grans[gran]) return null;
  const s = spanScores(d, method, a, b), G = d.grans[gran];
  const tot = totals(s, G.of, G.segs.length, 0);
  return G.segs.map((seg, k) => ({start: seg[0], end: seg[1], text: seg[4], label: seg[3],
                                  template: !!seg[2], score: tot[k]}));
};
function render(cfg, d, span, gran) {
  const method = cfg.method, signed = decoded.m[method].signed, inten = cfg.intensity;
  const G = d.grans[gran], segs = G.segs;
  const scores = spanScores(d, method, span[0], span[1]);
  const segTot = totals(scores, G.of, segs.length, 0);
  const respTot = totals(scores, d.resp.of, d.resp.n, d.p);
  // salience_view_html: one normalisation over the counted prompt segments and the response.
  const all = Array.from(segTot).concat(Array.from(respTot));
  const counted = segs.map(s => cfg.tmpl || !s[2]).concat(Array.from(respTot, () => true));
  const idx = [];
  counted.forEach((c, i) => { if (c) idx.push(i); });
  const normed = normalize(idx.map(i => all[i]), signed);
  const colours = new Float64Array(all.length);
  idx.forEach((i, j) => { colours[i] = normed[j]; });
  const view = element.querySelector('.pl-view');
  const promptEl = view && view.querySelector('.pl-prompt');
  if (!promptEl) return false;
  const frag = document.createDocumentFragment(), cps = decoded.cps;
  let pos = 0;
  const end = d.plen;
  segs.forEach((seg, k) => {
    let s = Math.max(seg[0], pos), e = Math.min(seg[1], end);
    if (e <= s) return;
    if (s > pos) frag.appendChild(document.createTextNode(cps.slice(pos, s).join('')));
    const el = document.createElement('span');
    const tmpl = !!seg[2];
    el.setAttribute('class', tmpl ? 'pl-seg pl-template' + (cfg.tmpl ? ' pl-template-included' : '') : 'pl-seg');
    el.setAttribute('style', style(colours[k], signed, inten));
    el.setAttribute('title', (tmpl ? 'chat template · score ' : 'score ') + fmt(segTot[k]));
    if (tmpl) el.setAttribute('data-template', 'true');
    el.textContent = cps.slice(s, e).join('');
    frag.appendChild(el);
    pos = e;
  });
  if (pos < end) frag.appendChild(document.createTextNode(cps.slice(pos, end).join('')));
  promptEl.replaceChildren(frag);
  const nseg = segs.length, t = d.t;
  view.querySelectorAll('.pl-response .pl-resp[data-index]').forEach(el => {
    const i = parseInt(el.getAttribute('data-index'), 10);
    const c = i < respTot.length ? colours[nseg + i] : 0;
    el.setAttribute('class', span[0] <= i && i < span[1] ? 'pl-resp pl-selected' : 'pl-resp');
    el.setAttribute('style', style(c, signed, inten));
    el.setAttribute('title', 'score ' + fmt(i < t ? scores[d.p + i] : 0));
  });
  renderRanked(cfg, G, segTot, signed, inten, span, gran);
  return true;
}
function renderRanked(cfg, G, segTot, signed, inten, span, gran) {
  const box = document.querySelector('#pl-ranked .pl-ranked-box');
  if (!box) return;
  // render_views keeps the template segments only with "include template"; ranked_table_html
  // colours over those, and rank_segments drops blank ones, sorting stably by score.
  const kept = [];
  G.segs.forEach((seg, k) => { if (cfg.tmpl || !seg[2]) kept.push(k); });
  const cols = normalize(kept.map(k => segTot[k]), signed);
  const byPos = new Map();
  kept.forEach((k, j) => byPos.set(G.segs[k][0] + ',' + G.segs[k][1], cols[j]));
  const cand = kept.filter(k => !G.segs[k][6] && (cfg.tmpl || !G.segs[k][2]));
  const key = signed ? (k => -Math.abs(segTot[k])) : (k => -segTot[k]);
  const ranked = cand.map((k, i) => [key(k), i, k]).sort((x, y) => (x[0] - y[0]) || (x[1] - y[1]))
    .slice(0, Math.max(cfg.k, 0)).map(x => x[2]);
  if (!ranked.length) {
    const div = document.createElement('div');
    div.setAttribute('class', 'pl-empty');
    div.textContent = 'No salience yet: select a response span.';
    box.replaceChildren(div);
    return;
  }
  const el = (tag, attrs, text) => {
    const x = document.createElement(tag);
    for (const [a, v] of Object.entries(attrs || {})) x.setAttribute(a, v);
    if (text !== undefined) x.textContent = text;
    return x;
  };
  const table = el('table', {'class': 'pl-ranked', 'data-method': cfg.method,
                             'data-granularity': G.name, 'data-span': span[0] + ':' + span[1],
                             'data-template': cfg.tmpl ? 'true' : 'false'});
  const head = el('thead'), hr = el('tr');
  for (const h of ['#', G.name, 'score', 'chars']) hr.appendChild(el('th', {}, h));
  head.appendChild(hr);
  const body = el('tbody');
  ranked.forEach((k, r) => {
    const seg = G.segs[k], rank = r + 1, c = byPos.get(seg[0] + ',' + seg[1]) || 0;
    const tr = el('tr', {'data-rank': String(rank)});
    tr.appendChild(el('td', {'class': 'pl-num'}, String(rank)));
    const td = el('td', {'class': 'pl-segtext', 'title': seg[4]});
    if (seg[3]) {
      td.setAttribute('data-label', seg[3]);
      td.appendChild(el('span', {'class': 'pl-seglabel'}, seg[3]));
      td.appendChild(document.createTextNode(seg[5]));
    } else {
      td.textContent = seg[5];
    }
    tr.appendChild(td);
    tr.appendChild(el('td', {'class': 'pl-num', 'style': style(c, signed, inten)}, fmt(segTot[k])));
    tr.appendChild(el('td', {'class': 'pl-num'}, seg[0] + '–' + seg[1]));
    body.appendChild(tr);
  });
  table.appendChild(head);
  table.appendChild(body);
  box.replaceChildren(table);
}
function ack() {
  seq += 1;
  return {key: local && config().key, rev: local.rev, seq, gran: local.gran,
          span: local.span.slice(), anchor: local.anchor};
}
// A response-token click (shift: extend from the anchor), as SessionState.select_token.
PL.click = function (index, shift) {
  const cur = current();
  if (!cur) return null;
  const {cfg, d} = cur;
  if (!(index >= 0 && index < d.t) || !d.grans[local.gran]) return null;
  if (shift && local.anchor !== null && local.anchor !== undefined) {
    local.span = [Math.min(local.anchor, index), Math.max(local.anchor, index) + 1];
  } else {
    local.anchor = index;
    local.span = [index, index + 1];
  }
  if (!render(cfg, d, local.span, local.gran)) return null;
  return ack();
};
PL.granularity = function (gran) {
  const cur = current();
  if (!cur) return null;
  const {cfg, d} = cur;
  if (!d.grans[gran]) return null;
  local.gran = gran;
  if (!render(cfg, d, local.span, gran)) return null;
  return ack();
};
// The page shows a fast-capable view whose data never arrived: ask the server to send it again.
PL.needsData = function () {
  const cfg = config();
  return !!(cfg && cfg.fast && !PL.disabled && (!props.pl_data || props.pl_data.key !== cfg.key));
};
// Decode the data as soon as it arrives (not on the first click).
new MutationObserver(() => {
  const idle = window.requestIdleCallback || (f => setTimeout(f, 0));
  idle(() => { try { current(); } catch (e) { /* the server path still works */ } });
}).observe(element, {childList: true, subtree: true, attributes: true, attributeFilter: ['data-config']});
"""

GRANULARITY_JS = """
(st, g, ack, wm) => {
  let a = null;
  try { a = window.promptlitSalience ? window.promptlitSalience.granularity(g) : null; }
  catch (e) { a = null; }
  return [st, g, a ? JSON.stringify(a) : "", wm];
}
"""
"""The granularity radio's client-side step: redraw in the browser, then hand the ack to the
server event as its third input (an empty string: the server redraws as before)."""
