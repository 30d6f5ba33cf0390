"""The OpenAPI schema documents every route with examples (what /docs shows)."""

import json

import pytest
from pydantic import BaseModel, ValidationError

from api.errors import invalid_body
from api.main import app
from api.schemas import ArticleCreate, BatchCreate


def component(schema: dict, ref: str) -> dict:
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def test_every_v1_route_has_examples_for_its_body_and_answer() -> None:
    schema = app.openapi()
    checked = 0
    for path, operations in schema["paths"].items():
        if not path.startswith("/v1"):
            continue
        for method, operation in operations.items():
            if body := operation.get("requestBody"):
                json_body = body["content"]["application/json"]
                assert "example" in json_body or "examples" in component(
                    schema, json_body["schema"]["$ref"]
                ), (method, path)
            success = next(v for k, v in operation["responses"].items() if k.startswith("2"))
            content = success.get("content", {})
            if "text/event-stream" in content:
                continue  # a stream of events, documented in the route's description
            ref = content["application/json"]["schema"]["$ref"]
            assert "examples" in component(schema, ref), (method, path)
            checked += 1
    assert checked >= 8


def test_errors_are_documented_as_problem_json_in_the_description() -> None:
    assert "problem+json" in app.openapi()["info"]["description"]


# --- 422s say what to fix in words ------------------------------------------------------------

JARGON = ("(?i", "^", "should match pattern", "Value error", "String should", "Input should")


def _detail(model: type[BaseModel], body: str, what: str) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(body)
    return invalid_body(caught.value, what).detail


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('{"url": "file:///etc/passwd"}', "only http and https URLs"),
        ('{"url": "http://127.0.0.1:22/"}', "loopback address"),
        ('{"url": "http://2130706433/"}', "loopback address"),
        ('{"url": "http://0x7f000001/"}', "loopback address"),
        ('{"url": "http://[::ffff:127.0.0.1]/"}', "loopback address embedded in an IPv6"),
        ('{"url": "http://[::1]/"}', "loopback address"),
        ('{"url": "http://localhost:8000/"}', "loopback name"),
        ('{"url": "http://api.localhost/"}', "loopback name"),
        ('{"url": "http://169.254.169.254/latest/"}', "cloud metadata address"),
        ('{"url": "http://10.1.2.3/"}', "private address"),
        ('{"url": "http://100.64.0.1/"}', "shared address space"),
        ('{"url": "http://224.0.0.1/"}', "multicast address"),
        ('{"url": "http://0.0.0.0/"}', "unspecified address"),
        ('{"url": "http://240.0.0.1/"}', "reserved address"),
        ('{"url": "http://[fe80::1]/"}', "link-local address"),
        ('{"url": "http://user:pw@example.com/"}', "credentials"),
        ('{"text": "A.", "callback_url": "http://192.168.0.9/hook"}', "private address"),
    ],
)
def test_a_refused_url_is_a_422_in_words_at_submit(body: str, words: str) -> None:
    detail = _detail(ArticleCreate, body, "article")
    assert words in detail and "public internet" in detail, detail
    assert not any(jargon in detail for jargon in JARGON), detail


def test_a_public_url_passes_and_a_name_is_left_to_the_worker() -> None:
    assert ArticleCreate.model_validate_json('{"url": "https://93.184.216.34/a"}').url
    # a name may resolve anywhere: the worker resolves it and checks every address
    assert ArticleCreate.model_validate_json('{"url": "http://intranet.example/"}').url


@pytest.mark.parametrize(
    ("model", "body", "words"),
    [
        (ArticleCreate, '{"text": "A.", "language": "' + "x" * 36 + '"}', "a language tag"),
        (ArticleCreate, '{"text": "A.", "metadata": [1]}', "'metadata' must be a JSON object"),
        (ArticleCreate, '{"text": "A.", "colour": "red"}', "'colour' is not a field"),
        (ArticleCreate, '{"text": "A.", "url": "https://example.com/"}', "exactly one of"),
        (ArticleCreate, "{", "not valid JSON"),
        (BatchCreate, '{"articles": []}', "'articles' must hold at least 1 item"),
        (BatchCreate, '{"articles": [{"url": "http://10.0.0.1/"}]}', "'articles[0].url'"),
    ],
)
def test_validation_messages_are_words(model: type[BaseModel], body: str, words: str) -> None:
    detail = _detail(model, body, "request")
    assert words in detail, detail
    assert not any(jargon in detail for jargon in JARGON), detail


def test_the_schema_carries_no_python_only_regex() -> None:
    text = json.dumps(app.openapi())
    assert "(?i" not in text
