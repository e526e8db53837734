"""The served app with a fake LM, through gradio_client: named endpoints, per-session state,
demo mode, share-link failure and auth parsing (no JAX, no browser)."""

import threading

import pytest
from gradio_client import Client

from promptlit.server import free_port, parse_auth, serve

from .fakes import EXAMPLES, make_workbench


@pytest.fixture(scope="module")
def server():
    srv = serve(make_workbench(), port=0, block=False)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    return Client(server.local_url, verbose=False)


def test_info_endpoint(client):
    info = client.predict(api_name="/info")
    assert info["datasets"] == {"toy": len(EXAMPLES)}
    assert info["salience_models"] == ["fake"] and info["demo_mode"] is False


def test_generate_endpoint(client):
    out = client.predict(dataset="toy", model="fake", example=1, prompt="",
                         api_name="/generate")
    assert out["response"] == " :rewsnA ok."
    assert out["response_tokens"] == [" :rewsnA", " ok."]
    assert out["response_logprobs"] == pytest.approx([-0.1, -0.2])
    assert out["metrics"]["exact_match"] == 0.0 and out["metrics"]["perplexity"] > 1
    raw = client.predict(prompt="hello world", api_name="/generate")
    assert raw["response"] == " dlrow ok." and raw["metrics"]["bleu"] is None


def test_salience_endpoint_spans_methods_granularities(client):
    words = client.predict(example=0, method="grad_l2", granularity="words", span_start=0,
                           span_stop=1, api_name="/salience")
    assert words["span"] == [0, 1] and words["target_text"] == " :noitadnemmoceR"
    # FakeLM: response token 0 -> prompt token 0 (1.0) and the last prompt token (0.5)
    scores = {s["text"]: s["score"] for s in words["segments"]}
    assert scores["Likes:"] == 1.0 and scores["Recommendation:"] == 0.5
    assert words["top"][0]["text"] == "Likes:" and words["signed"] is False
    lines = client.predict(example=0, method="grad_dot_input", granularity="lines",
                           api_name="/salience")
    assert lines["signed"] is True and len(lines["segments"]) == 4
    assert sum(s["score"] for s in lines["segments"]) == pytest.approx(
        sum(s["score"] for s in client.predict(example=0, method="grad_dot_input",
                                               granularity="tokens",
                                               api_name="/salience")["segments"]))
    with pytest.raises(Exception, match="method must be one of"):
        client.predict(example=0, method="attention", api_name="/salience")


def test_salience_endpoint_bounds_every_size_a_caller_controls(client):
    info = client.predict(api_name="/info")
    assert info["limits"]["max_ig_steps"] == 256 and info["saving"] is False
    cases = [
        (dict(method="integrated_gradients", ig_steps=1024), "ig_steps must be between 1 and 256"),
        (dict(ig_steps=0), "ig_steps must be between 1 and 256"),
        (dict(top_k=-1), "top_k must be between 1 and 200, got -1"),
        (dict(top_k=10**9), "top_k must be between 1 and 200"),
        (dict(example="abc"), "example must be a whole number, got 'abc'"),
        (dict(example=99), "example must be between 0 and 2, got 99"),
        (dict(span_start=1, span_stop=99), r"span \[1, 99\) is outside the response: it has 2"),
        (dict(span_start=-3), "span_start must be between 0"),
        (dict(granularity="chapters"), "granularity must be one of"),
        (dict(prompt="x" * 20_001), "prompt has 20,001 characters; this server accepts at most"),
    ]
    for kwargs, message in cases:
        with pytest.raises(Exception, match=message):
            client.predict(**{"example": 0, **kwargs}, api_name="/salience")


def test_salience_endpoint_aggregates_few_shot_blocks(client):
    prompt = ("Likes: fish\nAnswer: yes\n\nLikes: pork\nAnswer: no\n\nLikes: rice\nAnswer:")
    out = client.predict(prompt=prompt, granularity="few-shot", api_name="/salience")
    assert [(s["text"], s["label"]) for s in out["segments"]] == [
        ("Likes: fish\nAnswer: yes", "example 1"), ("Likes: pork\nAnswer: no", "example 2"),
        ("Likes: rice\nAnswer:", "query")]
    assert sum(s["score"] for s in out["segments"]) == pytest.approx(sum(
        s["score"] for s in client.predict(prompt=prompt, granularity="tokens",
                                           api_name="/salience")["segments"]))


def test_generate_needs_an_example_or_a_prompt(client):
    # An empty prompt used to answer example 0 silently.
    with pytest.raises(Exception, match="pass example=N"):
        client.predict(prompt="", api_name="/generate")
    with pytest.raises(Exception, match="prompt is blank"):
        client.predict(prompt="   ", example=1, api_name="/generate")
    with pytest.raises(Exception, match="unknown model 'nope'"):
        client.predict(model="nope", example=0, api_name="/generate")


def test_add_example_takes_the_other_fields_as_json():
    srv = serve(make_workbench(), port=0, block=False)
    try:
        c = Client(srv.local_url, verbose=False)
        c.predict("a new prompt", "", '{"source": "mine"}', api_name="/add_example")
        with pytest.raises(Exception, match="other fields: not valid JSON"):
            c.predict("p", "", "{nope", api_name="/add_example")
        assert c.predict(api_name="/session")["added"] == ["a new prompt"]
    finally:
        srv.stop()


def test_three_concurrent_sessions_keep_their_own_state(server):
    clients = [Client(server.local_url, verbose=False) for _ in range(3)]
    results: dict[int, dict] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            c = clients[i]
            for k in range(2):
                c.predict(f"prompt {i}.{k}", "", api_name="/add_example")
            results[i] = c.predict(api_name="/session")
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    for i in range(3):
        assert results[i]["added"] == [f"prompt {i}.0", f"prompt {i}.1"]
        assert results[i]["num_examples"] == len(EXAMPLES) + 2
        assert results[i]["selected"] == len(EXAMPLES) + 1


def test_demo_mode_refuses_saves_and_says_so():
    from promptlit.ui.app import build_app

    demo = build_app(make_workbench(), demo_mode=True)
    assert any("Demo mode" in str(getattr(b, "value", "")) for b in demo.blocks.values())


def test_share_failure_keeps_serving_locally(capsys):
    # No network here: the share link cannot be made; the server must say so and keep serving.
    srv = serve(make_workbench(), port=free_port(), share=True, auth="u:p", block=False,
                share_timeout=10)
    try:
        out = capsys.readouterr().out
        assert srv.share_url is None and srv.url == srv.local_url
        assert "Could not create a share link (" in out
        assert f"serving locally at {srv.local_url.rstrip('/')}" in out
        client = Client(srv.local_url, verbose=False, auth=("u", "p"))
        assert client.predict(api_name="/info")["datasets"] == {"toy": len(EXAMPLES)}
    finally:
        srv.stop()


def test_share_without_auth_is_refused_unless_allow_public():
    # A share link is the public internet: without a login it must be asked for explicitly.
    with pytest.raises(ValueError, match=r"refusing to create a public share link without a "
                                         r"login\. Fix: .*--auth-file FILE.*--allow-public"):
        serve(make_workbench(), port=free_port(), share=True, block=False, share_timeout=5)
    with pytest.warns(UserWarning, match="without auth"):
        srv = serve(make_workbench(), port=free_port(), share=True, block=False,
                    share_timeout=5, allow_public=True)
    srv.stop()


def test_parse_auth(tmp_path):
    assert parse_auth(None) is None
    assert parse_auth("ann:pw") == [("ann", "pw")]
    f = tmp_path / "users.txt"
    f.write_text("# users\nann:pw\n\nbob:secret:with:colons\n")
    assert parse_auth(str(f)) == [("ann", "pw"), ("bob", "secret:with:colons")]
    f.write_text("ann:pw\nbroken\n")
    with pytest.raises(ValueError, match=r"users.txt:2: expected user:password"):
        parse_auth(str(f))
    assert parse_auth(("a", "b")) == [("a", "b")]
