"""The fake LLM server, driven over real HTTP by the real `openai` client."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema

from testkit.fake_llm import LOADED_PREFIX, distort_quote, generate_answer
from testkit.stack import FakeLLM, wait_until
from worker.grounding import Grounder
from worker.schemas import Draft

HTTP_TIMEOUT = 10.0

ARTICLE = (
    "Libraries Are Worth Saving\n"
    "\n"
    "The city council voted on Tuesday to close the Elm Street library. "
    "Critics called the decision reckless and short-sighted. "
    "Mr. Okafor, who chairs the finance committee, said the branch costs too much to run. "
    "Supporters of the library say it is the only quiet place to study in the district.\n"
    "\n"
    "The closure will save about 400,000 euros a year, according to the council. "
    "Parents plan to protest outside City Hall next week. "
    "Nobody expects the vote to be reversed."
)
SYSTEM_PROMPT = "You write neutral summaries. The article sits between <article> and </article>."


def _user_message(article: str) -> str:
    return f"Summarize the article below.\nTitle: (none)\n\n<article>\n{article}\n</article>"


def _messages(article: str = ARTICLE) -> list[ChatCompletionMessageParam]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": _user_message(article)},
    ]


def _draft_format() -> ResponseFormatJSONSchema:
    return {
        "type": "json_schema",
        "json_schema": {"name": "draft", "strict": True, "schema": Draft.model_json_schema()},
    }


@pytest.fixture
def fake(fake_llm: FakeLLM) -> FakeLLM:
    """The session's stand-in; conftest's `_calm_llm` resets it before and after each test."""
    return fake_llm


def ask(fake: FakeLLM, client: openai.OpenAI, **kwargs: Any) -> Any:
    kwargs.setdefault("response_format", _draft_format())
    return client.chat.completions.create(model="gpt-4o-mini", messages=_messages(), **kwargs)


# --- answers ---------------------------------------------------------------------------------


def test_strict_json_schema_answer_validates_as_draft(fake: FakeLLM) -> None:
    with fake.client() as client:
        completion = ask(fake, client)

    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.refusal is None
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )

    assert choice.message.content is not None
    draft = Draft.model_validate_json(choice.message.content)
    quotes = [e.quote for point in draft.argument_points for e in point.evidence]
    assert len(quotes) >= 2
    assert all(quote and quote in ARTICLE for quote in quotes), quotes
    assert len(set(quotes)) == len(quotes), "quotes should walk the article, not repeat"
    assert draft.loaded_language and all(
        re.search(rf"\b{re.escape(word)}\b", ARTICLE) for word in draft.loaded_language
    )
    assert draft.summary and draft.thesis
    assert all(point.speaker == "the author" and point.premises for point in draft.argument_points)


def test_last_request_shows_what_the_client_sent(fake: FakeLLM) -> None:
    with fake.client() as client:
        ask(fake, client)

    sent = fake.stats()["last_request"]
    system, user = sent["messages"]
    assert sent["model"] == "gpt-4o-mini"
    assert sent["response_format"]["json_schema"]["strict"] is True
    assert "<article>\n" + ARTICLE + "\n</article>" in user["content"]
    assert ARTICLE not in system["content"]


def test_without_delimiters_the_whole_user_message_is_the_article(fake: FakeLLM) -> None:
    text = "Plain request without delimiters. " + ARTICLE
    with fake.client() as client:
        completion = client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": text}],
            response_format=_draft_format(),
        )
    draft = Draft.model_validate_json(completion.choices[0].message.content or "")
    assert all(e.quote in text for p in draft.argument_points for e in p.evidence)


def test_json_object_mode_uses_a_schema_embedded_in_a_fence(fake: FakeLLM) -> None:
    schema = json.dumps(Draft.model_json_schema())
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": f"Answer with JSON matching:\n```json\n{schema}\n```"},
        {"role": "user", "content": _user_message(ARTICLE)},
    ]
    with fake.client() as client:
        completion = client.chat.completions.create(
            model="m", messages=messages, response_format={"type": "json_object"}
        )
    draft = Draft.model_validate_json(completion.choices[0].message.content or "")
    assert all(e.quote in ARTICLE for p in draft.argument_points for e in p.evidence)


def test_json_object_mode_without_a_schema_is_an_empty_object(fake: FakeLLM) -> None:
    with fake.client() as client:
        completion = ask(fake, client, response_format={"type": "json_object"})
    assert json.loads(completion.choices[0].message.content or "") == {}


def test_models_endpoint(fake: FakeLLM) -> None:
    with fake.client() as client:
        models = client.models.list()
    assert any(model.id for model in models.data)


# --- latency and concurrency -------------------------------------------------------------------


def test_latency_delays_the_answer(fake: FakeLLM) -> None:
    fake.control(latency=0.5)
    with fake.client() as client:
        started = time.monotonic()
        completion = ask(fake, client)
        elapsed = time.monotonic() - started
    assert elapsed >= 0.45  # lower bound only; the loop clock may fire a hair early
    Draft.model_validate_json(completion.choices[0].message.content or "")


def test_concurrent_requests_are_served_together(fake: FakeLLM) -> None:
    fake.control(latency=0.5)
    workers = 8
    barrier = threading.Barrier(workers, timeout=HTTP_TIMEOUT)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            with fake.client() as client:
                barrier.wait()
                ask(fake, client)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=HTTP_TIMEOUT * 2)
    assert not any(thread.is_alive() for thread in threads)
    assert not errors, errors

    stats = fake.stats()
    assert stats["requests"] == workers and stats["completions"] == workers
    assert stats["max_in_flight"] >= 2  # async sleeps overlap instead of queueing
    assert stats["in_flight"] == 0


# --- faults -----------------------------------------------------------------------------------


def test_429_is_a_rate_limit_error_with_retry_after(fake: FakeLLM) -> None:
    fake.control(faults=[{"kind": "429", "count": 1, "retry_after": 7}])
    with fake.client() as client, pytest.raises(openai.RateLimitError) as caught:
        ask(fake, client)
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.code == "rate_limit_exceeded"


def test_429_retry_after_defaults_to_one_second(fake: FakeLLM) -> None:
    fake.control(faults=[{"kind": 429, "count": 1}])
    with fake.client() as client, pytest.raises(openai.RateLimitError) as caught:
        ask(fake, client)
    assert caught.value.response.headers["retry-after"] == "1"


def test_quota_is_a_rate_limit_error_without_retry_after(fake: FakeLLM) -> None:
    fake.control(faults=[{"kind": "quota", "count": 1}])
    with fake.client() as client, pytest.raises(openai.RateLimitError) as caught:
        ask(fake, client)
    assert caught.value.code == "insufficient_quota"
    assert caught.value.type == "insufficient_quota"
    assert "retry-after" not in caught.value.response.headers


@pytest.mark.parametrize(
    ("kind", "error"),
    [("500", openai.InternalServerError), ("auth", openai.AuthenticationError)],
)
def test_status_faults_raise(fake: FakeLLM, kind: str, error: type[Exception]) -> None:
    fake.control(faults=[{"kind": kind, "count": 1}])
    with fake.client() as client, pytest.raises(error):
        ask(fake, client)


def test_auth_fault_carries_invalid_api_key_code(fake: FakeLLM) -> None:
    fake.control(faults=[{"kind": "auth", "count": 1}])
    with fake.client() as client, pytest.raises(openai.AuthenticationError) as caught:
        ask(fake, client)
    assert caught.value.code == "invalid_api_key"


def test_timeout_fault_times_the_client_out(fake: FakeLLM) -> None:
    fake.control(faults=[{"kind": "timeout", "count": 1, "timeout_seconds": 3}])
    with fake.client(timeout=1.0) as client, pytest.raises(openai.APITimeoutError):
        ask(fake, client)
    # The server notices the hang-up (or finishes its sleep) and stops counting it.
    wait_until(lambda: fake.stats()["in_flight"] == 0, 10.0, what="in_flight to drop")
    assert fake.stats()["faults"]["timeout"] == 1


def test_malformed_body_fails_in_the_client(fake: FakeLLM) -> None:
    fake.control(faults=[{"kind": "malformed", "count": 1}])
    with fake.client() as client:
        try:
            completion = ask(fake, client)
        except Exception:  # openai raises the JSON decoder's error for a truncated body
            return
    with pytest.raises(ValueError):
        json.loads(completion.choices[0].message.content or "")


def test_bad_json_content_is_a_200_with_unparseable_content(fake: FakeLLM) -> None:
    fake.control(faults=[{"kind": "bad_json_content", "count": 1}])
    with fake.client() as client:
        completion = ask(fake, client)
    assert completion.choices[0].finish_reason == "stop"
    with pytest.raises(ValueError):
        json.loads(completion.choices[0].message.content or "")


def test_length_fault_truncates_content(fake: FakeLLM) -> None:
    fake.control(faults=[{"kind": "length", "count": 1}])
    with fake.client() as client:
        completion = ask(fake, client)
    choice = completion.choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.content
    with pytest.raises(ValueError):
        json.loads(choice.message.content)


def test_refusal_fault(fake: FakeLLM) -> None:
    fake.control(faults=[{"kind": "refusal", "count": 1}])
    with fake.client() as client:
        completion = ask(fake, client)
    message = completion.choices[0].message
    assert message.content is None
    assert message.refusal == "I can't help with that."


def test_count_faults_stop_after_n_and_stats_count_them(fake: FakeLLM) -> None:
    fake.control(faults=[{"kind": "500", "count": 2}])
    with fake.client() as client:
        for _ in range(2):
            with pytest.raises(openai.InternalServerError):
                ask(fake, client)
        ask(fake, client)  # third request is healthy again

    stats = fake.stats()
    assert stats["requests"] == 3
    assert stats["completions"] == 1
    assert stats["faults"]["500"] == 2
    assert sum(stats["faults"].values()) == 2
    assert stats["in_flight"] == 0


def test_rate_faults_fire_with_their_probability(fake: FakeLLM) -> None:
    fake.control(faults=[{"kind": "429", "rate": 1.0}])
    with fake.client() as client:
        for _ in range(3):
            with pytest.raises(openai.RateLimitError):
                ask(fake, client)
        fake.control(faults=[{"kind": "429", "rate": 0.0}])
        ask(fake, client)
    assert fake.stats()["faults"]["429"] == 3


def test_control_keeps_unmentioned_settings_and_rejects_nonsense(fake: FakeLLM) -> None:
    settings = fake.control(latency=0.25)
    settings = fake.control(faults=[{"kind": "500", "count": 1}])
    assert settings["latency"] == 0.25
    assert settings["faults"] == [{"kind": "500", "count": 1, "timeout_seconds": 30.0}]

    bad = [
        {"faults": [{"kind": "teapot", "count": 1}]},
        {"faults": [{"kind": "500"}]},  # neither rate nor count
        {"latency": -1},
        {"max_context_chars": -1},
        {"requests_log": "sometimes"},
        {"unknown": True},
    ]
    for body in bad:
        assert httpx.post(f"{fake.url}/_control", json=body, timeout=10).status_code == 422, body


def test_reset_stats_zeroes_counters(fake: FakeLLM) -> None:
    with fake.client() as client:
        ask(fake, client)
    assert fake.stats()["requests"] == 1
    fake.control(reset_stats=True)
    stats = fake.stats()
    assert stats["requests"] == stats["completions"] == stats["max_in_flight"] == 0
    assert stats["last_request"] is None


# --- the generator, in process -------------------------------------------------------------------


def test_generator_follows_schema_keywords() -> None:
    schema = {
        "$defs": {
            "Tag": {"type": "string", "enum": ["first", "second"]},
            "Item": {
                "type": "object",
                "properties": {"quote": {"type": "string"}, "n": {"type": "integer"}},
            },
        },
        "type": "object",
        "properties": {
            "tag": {"$ref": "#/$defs/Tag"},
            "maybe": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/Item"}]},
            "three": {"type": "array", "items": {"type": "number"}, "minItems": 3},
            "one": {"type": "array", "items": {"type": "boolean"}, "maxItems": 1},
            "short": {"type": "string", "maxLength": 5},
            "loaded_language": {"type": "array", "items": {"type": "string"}},
        },
    }
    answer = generate_answer(schema, ARTICLE)
    assert answer["tag"] == "first"
    assert answer["maybe"]["quote"] in ARTICLE and answer["maybe"]["n"] == 0
    assert answer["three"] == [0, 0, 0]
    assert answer["one"] == [False]
    assert len(answer["short"]) <= 5
    assert len(answer["loaded_language"]) == 2
    assert all(" " not in word and word in ARTICLE for word in answer["loaded_language"])


def test_generator_handles_an_empty_article() -> None:
    answer = generate_answer(Draft.model_json_schema(), "")
    Draft.model_validate(answer)


# --- faults that model real servers' and models' quirks ------------------------------------------


def _json_object_messages() -> list[ChatCompletionMessageParam]:
    schema = json.dumps(Draft.model_json_schema())
    return [
        {"role": "system", "content": f"Answer with JSON matching:\n```json\n{schema}\n```"},
        {"role": "user", "content": _user_message(ARTICLE)},
    ]


def _quotes(draft: Draft) -> list[str]:
    return [e.quote for point in draft.argument_points for e in point.evidence]


def test_reject_json_schema_spares_json_object_requests(fake: FakeLLM) -> None:
    fake.control(faults=[{"kind": "reject_json_schema", "count": 1}])
    with fake.client() as client:
        # json_object requests are served and do not use the rule up.
        completion = client.chat.completions.create(
            model="m", messages=_json_object_messages(), response_format={"type": "json_object"}
        )
        Draft.model_validate_json(completion.choices[0].message.content or "")
        assert fake.stats()["faults"]["reject_json_schema"] == 0
        assert fake.control()["faults"][0]["count"] == 1

        with pytest.raises(openai.BadRequestError) as caught:
            ask(fake, client)
        ask(fake, client)  # the one shot is spent

    err = caught.value
    assert err.status_code == 400
    assert err.code == "unsupported_response_format"
    assert err.param == "response_format"
    assert err.type == "invalid_request_error"
    assert isinstance(err.body, dict)
    assert err.body["message"] == "response_format json_schema is not supported by this server"
    stats = fake.stats()
    assert stats["faults"]["reject_json_schema"] == 1
    assert stats["requests"] == 3 and stats["completions"] == 2
    assert fake.control()["faults"][0]["count"] == 0


def test_rate_reject_json_schema_rejects_every_json_schema_request(fake: FakeLLM) -> None:
    fake.control(faults=[{"kind": "reject_json_schema", "rate": 1.0}])
    with fake.client() as client:
        for _ in range(2):
            with pytest.raises(openai.BadRequestError):
                ask(fake, client)
            ask(fake, client, response_format={"type": "json_object"})
    assert fake.stats()["faults"]["reject_json_schema"] == 2


def test_a_rule_that_does_not_apply_lets_the_next_rule_fire(fake: FakeLLM) -> None:
    fake.control(faults=[{"kind": "reject_json_schema", "count": 1}, {"kind": "500", "count": 1}])
    with fake.client() as client, pytest.raises(openai.InternalServerError):
        ask(fake, client, response_format={"type": "json_object"})
    faults = fake.stats()["faults"]
    assert faults["500"] == 1 and faults["reject_json_schema"] == 0


def test_bad_quotes_are_not_in_the_article(fake: FakeLLM) -> None:
    fake.control(faults=[{"kind": "bad_quotes", "count": 1}])
    with fake.client() as client:
        # An answer without quotes does not use the rule up.
        empty = ask(fake, client, response_format={"type": "json_object"})
        assert json.loads(empty.choices[0].message.content or "") == {}
        bad = ask(fake, client)
        good = ask(fake, client)

    assert bad.choices[0].finish_reason == "stop"
    draft = Draft.model_validate_json(bad.choices[0].message.content or "")
    quotes = _quotes(draft)
    assert len(quotes) >= 2
    grounder = Grounder(ARTICLE)
    for quote in quotes:
        assert quote not in ARTICLE
        assert quote.casefold() not in ARTICLE.casefold()
        assert " not " in quote and "entirely" in quote
        assert not grounder.locate(quote).verified, quote  # not even as a fuzzy match
    # Everything else is as usual.
    healthy = Draft.model_validate_json(good.choices[0].message.content or "")
    assert draft.summary == healthy.summary and draft.thesis == healthy.thesis
    assert draft.loaded_language == healthy.loaded_language
    assert all(quote in ARTICLE for quote in _quotes(healthy))

    stats = fake.stats()
    assert stats["faults"]["bad_quotes"] == 1
    assert stats["requests"] == 3 and stats["completions"] == 2


def test_distort_quote_never_returns_article_text() -> None:
    assert distort_quote("", "") == "not entirely"
    assert distort_quote("Hi", "Hi") not in "Hi"
    sentence = "The council voted to close the library on Tuesday."
    distorted = distort_quote(sentence, sentence)
    assert distorted.startswith("The not ") and "entirely" in distorted
    assert not Grounder(sentence).locate(distorted).verified


def test_loaded_summary_prefixes_summary_and_thesis(fake: FakeLLM) -> None:
    fake.control(faults=[{"kind": "loaded_summary", "count": 1}])
    quotes_only = {
        "type": "object",
        "properties": {"quotes": {"type": "array", "items": {"type": "string"}}},
    }
    with fake.client() as client:
        # An answer without summary/thesis does not use the rule up.
        other = ask(
            fake,
            client,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "quotes", "schema": quotes_only},
            },
        )
        assert all(
            q in ARTICLE for q in json.loads(other.choices[0].message.content or "")["quotes"]
        )
        loaded = ask(fake, client)
        healthy = ask(fake, client)

    draft = Draft.model_validate_json(loaded.choices[0].message.content or "")
    normal = Draft.model_validate_json(healthy.choices[0].message.content or "")
    assert LOADED_PREFIX == "This disastrous and shameful plan: "
    assert draft.summary == LOADED_PREFIX + normal.summary
    assert draft.thesis == LOADED_PREFIX + normal.thesis
    assert not normal.summary.startswith(LOADED_PREFIX)
    assert "disastrous" not in ARTICLE and "shameful" not in ARTICLE
    assert _quotes(draft) == _quotes(normal)  # quotes stay verbatim
    assert fake.stats()["faults"]["loaded_summary"] == 1


def _assert_context_length_error(err: openai.BadRequestError) -> None:
    assert err.status_code == 400
    assert err.code == "context_length_exceeded"
    assert err.param == "messages"
    assert err.type == "invalid_request_error"
    assert isinstance(err.body, dict)
    assert err.body["message"].startswith("This model's maximum context length is ")


def test_context_length_fault(fake: FakeLLM) -> None:
    fake.control(faults=[{"kind": "context_length", "count": 1}])
    with fake.client() as client:
        with pytest.raises(openai.BadRequestError) as caught:
            ask(fake, client)
        ask(fake, client)
    _assert_context_length_error(caught.value)
    assert "maximum context length is 8192 tokens." in str(caught.value)
    assert fake.stats()["faults"]["context_length"] == 1


def test_max_context_chars_rejects_long_prompts(fake: FakeLLM) -> None:
    prompt_chars = len(SYSTEM_PROMPT) + len(_user_message(ARTICLE))
    settings = fake.control(
        max_context_chars=prompt_chars - 1, faults=[{"kind": "500", "count": 1}]
    )
    assert settings["max_context_chars"] == prompt_chars - 1
    assert fake.control(latency=0)["max_context_chars"] == prompt_chars - 1  # absent keeps it

    with fake.client() as client:
        with pytest.raises(openai.BadRequestError) as caught:
            ask(fake, client)
        _assert_context_length_error(caught.value)
        stats = fake.stats()
        assert stats["faults"]["context_length"] == 1
        assert stats["faults"]["500"] == 0  # the limit uses up no fault rule
        assert fake.control()["faults"][0]["count"] == 1

        # A short prompt passes the limit (and meets the pending 500 rule).
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "Hello."}]
            )

        fake.control(max_context_chars=prompt_chars)  # exactly at the limit is fine
        Draft.model_validate_json(ask(fake, client).choices[0].message.content or "")

        fake.control(max_context_chars=10)
        with pytest.raises(openai.BadRequestError):
            ask(fake, client)
        assert fake.control(max_context_chars=None)["max_context_chars"] is None
        ask(fake, client)  # unlimited again

    stats = fake.stats()
    assert stats["faults"]["context_length"] == 2
    assert stats["completions"] == 2


def test_requests_log_keeps_bodies_while_on(fake: FakeLLM) -> None:
    with fake.client() as client:
        ask(fake, client)
        assert fake.requests() == []  # off by default

        assert fake.control(requests_log=True)["requests_log"] is True
        fake.control(faults=[{"kind": "500", "count": 1}])
        with pytest.raises(openai.InternalServerError):
            ask(fake, client, temperature=0.5)  # faulted requests are logged too
        ask(fake, client, response_format={"type": "json_object"})

    logged = fake.requests()
    assert len(logged) == 2
    assert logged[0]["temperature"] == 0.5  # oldest first
    assert logged[1]["response_format"] == {"type": "json_object"}
    assert logged[1]["messages"] == _messages()

    fake.control(reset_stats=True)
    assert fake.requests() == []
    assert fake.control()["requests_log"] is True  # reset_stats clears the log, not the switch


def test_requests_log_keeps_the_last_200(fake: FakeLLM) -> None:
    fake.control(requests_log=True)
    for n in range(205):
        body = {"model": "m", "messages": [{"role": "user", "content": f"request {n}"}]}
        httpx.post(f"{fake.url}/v1/chat/completions", json=body, timeout=10).raise_for_status()
    logged = fake.requests()
    assert len(logged) == 200
    assert [m["messages"][0]["content"] for m in (logged[0], logged[-1])] == [
        "request 5",
        "request 204",
    ]

    fake.control(requests_log=False)
    httpx.post(f"{fake.url}/v1/chat/completions", json=body, timeout=10).raise_for_status()
    assert len(fake.requests()) == 200  # switching off stops logging but keeps the log


# --- real servers' dialects and answer shapes ----------------------------------------------------


def _content(completion: Any) -> str:
    return completion.choices[0].message.content or ""


def test_llama_cpp_python_refuses_json_schema_with_its_500(fake: FakeLLM) -> None:
    fake.control(server="llama_cpp_python")
    schema = Draft.model_json_schema()
    with fake.client() as client:
        with pytest.raises(openai.InternalServerError) as caught:
            ask(fake, client)
        # the form llama.cpp and llama-cpp-python enforce: the schema beside json_object
        completion = client.chat.completions.create(
            model="anything",
            messages=_messages(),
            extra_body={"response_format": {"type": "json_object", "schema": schema}},
        )
    err = caught.value
    assert err.status_code == 500 and isinstance(err.body, dict)
    assert err.body["type"] == "internal_server_error" and err.body["code"] is None
    assert "Input should be 'text' or 'json_object'" in err.body["message"]
    assert "'response_format', 'type'" in err.body["message"]
    draft = Draft.model_validate_json(_content(completion))
    assert all(quote in ARTICLE for quote in _quotes(draft))
    stats = fake.stats()
    assert stats["refusals"]["json_schema"] == 1 and stats["faults"]["500"] == 0


def test_old_server_refuses_max_completion_tokens(fake: FakeLLM) -> None:
    fake.control(server="old_server")
    with fake.client() as client:
        with pytest.raises(openai.BadRequestError) as caught:
            ask(fake, client, max_completion_tokens=100)
        Draft.model_validate_json(_content(ask(fake, client, max_tokens=100)))
    assert caught.value.body == {
        "message": "Unrecognized request argument supplied: max_completion_tokens",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert fake.stats()["refusals"]["max_completion_tokens"] == 1
    assert fake.control(server="openai")["server"] == "openai"


def test_unknown_models_are_404_model_not_found(fake: FakeLLM) -> None:
    assert fake.control(models=["gpt-4o-mini"])["models"] == ["gpt-4o-mini"]
    with fake.client() as client:
        ask(fake, client)  # served
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(model="gpt-9", messages=_messages())
        assert caught.value.code == "model_not_found"
        assert caught.value.body["message"] == (  # type: ignore[index]
            "The model `gpt-9` does not exist or you do not have access to it."
        )
        fake.control(models=None)  # any model again
        client.chat.completions.create(model="gpt-9", messages=_messages())
    assert fake.stats()["refusals"]["model_not_found"] == 1


def test_without_a_json_mode_a_schema_in_the_prompt_is_answered_in_a_fence(fake: FakeLLM) -> None:
    with fake.client() as client:
        completion = client.chat.completions.create(model="m", messages=_json_object_messages())
    content = _content(completion)
    assert content.startswith("```json\n") and content.endswith("\n```")
    Draft.model_validate_json(content.removeprefix("```json\n").removesuffix("\n```"))


def test_reject_json_object_refuses_only_json_object_requests(fake: FakeLLM) -> None:
    fake.control(faults=[{"kind": "reject_json_object", "rate": 1.0}])
    with fake.client() as client:
        with pytest.raises(openai.BadRequestError) as caught:
            ask(fake, client, response_format={"type": "json_object"})
        ask(fake, client)
    assert caught.value.param == "response_format"
    assert fake.stats()["faults"]["reject_json_object"] == 1


@pytest.mark.parametrize(
    ("kind", "before", "after"),
    [
        ("fenced", "```json\n{", "}\n```"),
        ("prose", "Here is the analysis you asked for:\n\n{", "}\n\nI hope this helps!"),
        ("think", "<think>\n", "}"),
    ],
)
def test_answer_shapes_wrap_the_json(fake: FakeLLM, kind: str, before: str, after: str) -> None:
    fake.control(faults=[{"kind": kind, "count": 1}])
    with fake.client() as client:
        shaped, plain = _content(ask(fake, client)), _content(ask(fake, client))
    assert shaped.startswith(before) and shaped.endswith(after)
    assert plain in shaped and plain.startswith("{")
    assert fake.stats()["faults"][kind] == 1


def test_answers_can_leave_fields_out(fake: FakeLLM) -> None:
    fake.control(
        faults=[{"kind": "missing_optional", "count": 1}, {"kind": "missing_thesis", "count": 1}]
    )
    with fake.client() as client:
        without_optional = json.loads(_content(ask(fake, client)))
        without_thesis = json.loads(_content(ask(fake, client)))
    assert "loaded_language" not in without_optional and "thesis" in without_optional
    assert without_optional["argument_points"]
    assert all("premises" not in point for point in without_optional["argument_points"])
    assert "thesis" not in without_thesis and "summary" in without_thesis
