"""The OpenAPI schema documents every route with examples (what /docs shows)."""

from api.main import app


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
