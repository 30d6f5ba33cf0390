"""A real model in the loop: API -> Redis -> worker -> llama.cpp's real server (the xllamacpp wheel)
running a real instruct GGUF from the registry (testkit/real_llm.py) -> database -> poll; and
`evenhand up --model` running that server itself.

Default settings but for the LLM's address: what a user who points evenhand at llama.cpp gets.
A job on this CPU takes about a minute, so there are two, on one short article each.
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from rapidfuzz import fuzz

from kernel.schemas import ResultPublic
from testkit.fixtures import FIXTURES, fresh_text
from testkit.real_llm import RealLLM, real_llm_server
from testkit.stack import FakeLLM, Stack, running_stack
from tests.e2e.test_cli import new_user_env, run_evenhand, start_up, stop_up

# a job on a real model takes minutes on a busy 2-core machine, not the suite's 300 s
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

JOB_SECONDS = 900  # a bound on a slow, shared machine; a job usually takes about a minute


@pytest.fixture(scope="module")
def real_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealLLM]:
    with real_llm_server(tmp_path_factory.mktemp("llama")) as server:
        yield server


@pytest.fixture(scope="module")
def real_stack(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, fake_llm: FakeLLM, real_llm: RealLLM
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("real-stack")
    with running_stack(
        "real", f"sqlite:///{tmp / 'real.db'}", redis_url, fake_llm, tmp,
        OPENAI_BASE_URL=real_llm.url, EVENHAND_MODEL=real_llm.model,
        # the defaults a user has: the support check on, the LLM's own timeout
        EVENHAND_SUPPORT_CHECK="true", EVENHAND_LLM_TIMEOUT="60",
    ) as stack:  # fmt: skip
        yield stack


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def at_its_place(quote: str, span: str) -> bool:
    """What the grounding promises of a verified quote: the span at its offsets has the same
    words in the same order, forgiving quotation marks, case, spacing, punctuation and a typo
    inside a word."""
    ours, theirs = _words(quote), _words(span)
    return len(ours) == len(theirs) and fuzz.ratio(" ".join(ours), " ".join(theirs)) >= 90


def test_a_real_model_behind_llama_cpp_gives_a_grounded_result(
    real_stack: Stack, real_llm: RealLLM
) -> None:
    text = fresh_text("short_opinion.txt")
    accepted = real_stack.submit(text=text, title="Keep the night buses running")
    job = real_stack.wait_job(accepted["job_id"], timeout=JOB_SECONDS)
    assert job["status"] == "succeeded", job
    result = ResultPublic.model_validate(job["result"])  # the schema, whole
    assert (result.provider, result.model) == ("openai", real_llm.model)
    assert result.summary.strip() and result.thesis.strip()
    assert result.argument_points, "an opinion piece argues"
    assert result.usage.llm_calls >= 2  # the draft and the support check
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    # quotes the model copied, located by our own code in the article's clean text
    with real_stack.client() as client:
        article = client.get(f"/v1/articles/{accepted['article_id']}").json()
    verified = [ev for p in result.argument_points for ev in p.evidence if ev.verified]
    assert verified, "at least one quote verifies"
    for ev in verified:
        assert at_its_place(ev.quote, article["clean_text"][ev.start : ev.end]), ev
    assert result.grounding.verified == len(verified)
    # every verdict of the support check comes from the model, on a verified quote only
    for point in result.argument_points:
        for ev in point.evidence:
            assert ev.support is None or ev.verified


def test_up_with_a_model_serves_it_and_stops_it(
    tmp_path: Path, real_llm: RealLLM, tmp_path_factory: pytest.TempPathFactory
) -> None:
    up = start_up(tmp_path_factory.mktemp("up-model"), "--model", str(real_llm.path))
    try:
        out = up.log
        assert f"model {real_llm.model}" in out and "llama.cpp server" in out
        base = re.search(r"llama\.cpp server (http://127\.0\.0\.1:\d+/v1)", out)
        assert base, out
        models = httpx.get(f"{base.group(1)}/models", timeout=10).json()
        assert real_llm.model in json.dumps(models)
        article = tmp_path / "article.txt"
        article.write_text(
            (FIXTURES / "single_sentence.txt").read_text(encoding="utf-8"), encoding="utf-8"
        )
        done = run_evenhand(
            "submit", str(article), "--wait", "--json", "--timeout", str(JOB_SECONDS),
            env=new_user_env(up.home), cwd=tmp_path, timeout=JOB_SECONDS + 60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        job = json.loads(done.stdout)
        assert job["status"] == "succeeded", job
        assert (job["result"]["provider"], job["result"]["model"]) == ("openai", real_llm.model)
        server = next(
            p
            for p in psutil.Process(up.process.pid).children(recursive=True)
            if "evenhand.local_llm" in " ".join(p.cmdline())
        )
    finally:
        stop_up(up)  # Ctrl-C stops every child, the model server included
    assert not server.is_running()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base.group(1)}/models", timeout=2)


def test_up_refuses_a_missing_or_foreign_model_file(tmp_path: Path) -> None:
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("not a model", encoding="utf-8")
    for path, says in ((tmp_path / "absent.gguf", "No model file"), (not_gguf, "not a GGUF")):
        done = run_evenhand(
            "up", "--model", str(path), env=new_user_env(tmp_path), cwd=tmp_path, timeout=60
        )
        assert done.returncode == 2 and says in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
