"""gradio_client against the real `promptlit serve` (embedded model): generate + salience."""

from __future__ import annotations

import numpy as np
import pytest
from gradio_client import Client

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def client(server_url):
    return Client(server_url, verbose=False)


def test_generate_endpoint_real_model(client):
    out = client.predict(dataset="sample_prompts", example=0, api_name="/generate")
    assert isinstance(out["response"], str) and out["response"].strip()
    assert len(out["response_tokens"]) == len(out["response_logprobs"]) > 0
    assert all(lp <= 1e-6 for lp in out["response_logprobs"])
    assert out["metrics"]["perplexity"] >= 1.0
    assert 0.0 <= out["metrics"]["rouge_l"] <= 1.0
    again = client.predict(dataset="sample_prompts", example=0, api_name="/generate")
    assert again["response"] == out["response"]  # greedy and cached


def test_salience_endpoint_real_model_exact_sums(client):
    kw = dict(dataset="sample_prompts", example=0, span_start=0, span_stop=2)
    tokens = client.predict(method="grad_l2", granularity="tokens", api_name="/salience", **kw)
    words = client.predict(method="grad_l2", granularity="words", api_name="/salience", **kw)
    lines = client.predict(method="grad_l2", granularity="lines", api_name="/salience", **kw)
    assert tokens["span"] == [0, 2] and not tokens["signed"]
    total = sum(s["score"] for s in tokens["segments"])
    assert total > 0
    # scores are sums: every granularity adds up to the same total (tokens with no characters,
    # such as <bos>, belong to no word/line, so compare against the tokens that have text)
    texted = sum(s["score"] for s in tokens["segments"] if s["end"] > s["start"])
    assert sum(s["score"] for s in words["segments"]) == pytest.approx(texted, rel=1e-5)
    assert sum(s["score"] for s in lines["segments"]) == pytest.approx(texted, rel=1e-5)
    top = [s["score"] for s in words["top"]]
    assert top == sorted(top, reverse=True)
    signed = client.predict(method="grad_dot_input", granularity="words", api_name="/salience",
                            **kw)
    assert signed["signed"] is True
    assert np.any(np.array([s["score"] for s in signed["segments"]]) < 0)


def test_salience_endpoint_errors_are_plain(client):
    with pytest.raises(Exception, match=r"example must be between 0 and \d+, got 999"):
        client.predict(dataset="sample_prompts", example=999, api_name="/salience")


def test_integrated_gradients_for_one_span(client):
    out = client.predict(dataset="sample_prompts", example=0, method="integrated_gradients",
                         granularity="words", span_start=1, span_stop=3, ig_steps=8,
                         api_name="/salience")
    assert out["signed"] is True and out["span"] == [1, 3]
    scores = np.array([s["score"] for s in out["segments"]])
    assert np.isfinite(scores).all() and np.abs(scores).sum() > 0
