"""The slower run: llama-cpp-python's server as a real peer. Not in `.ci/run`: installing it
compiles llama.cpp (about 11 minutes on 2 cores), more than CI's whole budget can give. Run it
with `pytest -m slow` after `pip install 'llama-cpp-python[server]'` (README, "Tests").

Its server refuses `json_schema` with a 500 and takes `{"type": "json_object", "schema": ...}`:
evenhand must step down once, by itself, and give a grounded result with default settings.
"""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kernel.schemas import ResultPublic
from testkit.fixtures import fresh_text
from testkit.real_llm import assembled_model
from testkit.stack import FakeLLM, Stack, free_port, running_stack, stop_process

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(1800)]

# the interpreter that has llama-cpp-python[server]: this one unless told otherwise
PYTHON = os.environ.get("EVENHAND_LLAMA_CPP_PYTHON", sys.executable)


@pytest.fixture(scope="module")
def llama_cpp_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    found = subprocess.run([PYTHON, "-c", "import llama_cpp.server"], capture_output=True)
    assert found.returncode == 0, (
        f"{PYTHON} has no llama-cpp-python: pip install 'llama-cpp-python[server]' "
        "(or set EVENHAND_LLAMA_CPP_PYTHON to an interpreter that has it)"
    )
    model, port = assembled_model(), free_port()
    log = (tmp_path_factory.mktemp("llama-cpp-python") / "server.log").open("wb")
    process = subprocess.Popen(
        [PYTHON, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "8192", "--model_alias", "local"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while True:  # it has no /health: /v1/models answers once the model is loaded
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=3).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def stack_on_it(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, fake_llm: FakeLLM,
    llama_cpp_python: str,
) -> Iterator[Stack]:  # fmt: skip
    tmp: Path = tmp_path_factory.mktemp("lcp-stack")
    with running_stack(
        "lcp", f"sqlite:///{tmp / 'lcp.db'}", redis_url, fake_llm, tmp,
        OPENAI_BASE_URL=llama_cpp_python, EVENHAND_MODEL="local", EVENHAND_SUPPORT_CHECK="true",
        EVENHAND_LLM_TIMEOUT="60",
    ) as stack:  # fmt: skip
        yield stack


def test_llama_cpp_python_gives_a_result_after_one_step_down(stack_on_it: Stack) -> None:
    job = stack_on_it.wait_job(
        stack_on_it.submit(text=fresh_text("short_opinion.txt"))["job_id"], timeout=900
    )
    assert job["status"] == "succeeded", job
    result = ResultPublic.model_validate(job["result"])
    assert result.argument_points and result.grounding.quotes > 0
    # every quote located in the article by our own code (whether this model copied it word for
    # word varies from run to run: `verified` says which did)
    assert all(ev.end > ev.start for p in result.argument_points for ev in p.evidence)
    log = (stack_on_it.log_dir / "worker.log").read_text()
    assert log.count('"llm_server_adapted"') == 1  # refused once, remembered after
    assert '"json_object_schema"' in log
