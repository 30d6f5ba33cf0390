"""The `evenhand` command as users run it: the client commands, the offline pipeline, Flower and
`evenhand up`."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from evenhand.embedded import free_port
from testkit.fixtures import FIXTURES, fresh_text
from testkit.stack import ROOT, Stack, stop_process, wait_until

pytestmark = pytest.mark.e2e

sqlite_only = pytest.mark.parametrize("stack", ["sqlite"], indirect=True)


def without_llm_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "EVENHAND_", "DATABASE_URL", "REDIS_URL"))
    }
    env["PYTHONPATH"] = str(ROOT)
    return env


@sqlite_only
def test_submit_wait_renders_the_result(stack: Stack) -> None:
    client_env = {"EVENHAND_API_URL": stack.api_url, "EVENHAND_API_KEY": stack.key}
    shown = stack.run_cli(
        "submit", str(FIXTURES / "opinion_boilerplate.txt"), "--wait", **client_env
    )
    assert "Thesis" in shown.stdout and "Summary" in shown.stdout
    assert "✓" in shown.stdout  # verified quotes are marked
    as_json = stack.run_cli(
        "submit", str(FIXTURES / "news_multiple_sides.txt"), "--wait", "--json", **client_env
    )
    job = json.loads(as_json.stdout)
    assert job["status"] == "succeeded" and job["result"]["provider"] == "openai"
    status = json.loads(stack.run_cli("status", job["id"], "--json", **client_env).stdout)
    assert status == job


@sqlite_only
def test_submit_from_stdin_without_wait_prints_the_job(stack: Stack) -> None:
    client_env = {"EVENHAND_API_URL": stack.api_url, "EVENHAND_API_KEY": stack.key}
    accepted = json.loads(
        stack.run_cli(
            "submit", "-", input="One plain sentence to summarize today.", **client_env
        ).stdout
    )
    assert accepted["status"] == "queued"
    assert stack.wait_job(accepted["job_id"])["status"] == "succeeded"


@sqlite_only
def test_client_errors_say_what_to_fix(stack: Stack) -> None:
    article = str(FIXTURES / "single_sentence.txt")
    down = stack.run_cli(
        "submit",
        article,
        check=False,
        EVENHAND_API_URL=f"http://127.0.0.1:{free_port()}",
        EVENHAND_API_KEY="eh_x",
    )
    assert down.returncode == 1 and "Cannot reach the evenhand API" in down.stderr
    wrong = stack.run_cli(
        "submit", article, check=False, EVENHAND_API_URL=stack.api_url, EVENHAND_API_KEY="eh_wrong"
    )
    assert wrong.returncode == 1 and "401" in wrong.stderr and "EVENHAND_API_KEY" in wrong.stderr
    env = {k: v for k, v in stack.env.items() if k != "EVENHAND_API_KEY"}
    missing = subprocess.run(
        [sys.executable, "-m", "evenhand.cli", "status", "00000000-0000-0000-0000-000000000000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "EVENHAND_API_KEY" in missing.stderr


def test_summarize_runs_the_pipeline_offline_with_the_extractive_provider(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "evenhand.cli", "summarize", str(FIXTURES / "opinion_boilerplate.txt")],
        env=without_llm_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    result = json.loads(done.stdout)
    assert result["provider"] == "extractive"
    assert result["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "llm_calls": 0}
    assert result["summary"] and result["argument_points"]
    assert result["grounding"]["quotes"] == result["grounding"]["verified"] > 0
    assert result["cleaning"]["lines_removed"] > 0


def test_summarize_reports_an_empty_article(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "evenhand.cli", "summarize", str(FIXTURES / "boilerplate_only.txt")],
        env=without_llm_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and "no_article_text" in done.stderr


@sqlite_only
def test_flower_lists_the_task(stack: Stack) -> None:
    port = free_port()
    log = (stack.log_dir / "flower.log").open("ab")
    flower = subprocess.Popen(
        [sys.executable, "-m", "celery", "--app", "worker", "flower", f"--port={port}", "--address=127.0.0.1", "--basic-auth=ops:secret"],
        env=stack.env, stdout=log, stderr=subprocess.STDOUT, cwd=stack.log_dir,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/api/tasks"
        wait_until(lambda: _answers(url), 30, what="Flower")
        assert httpx.get(url, timeout=5).status_code == 401  # basic auth is enforced
        # Events are broadcast, not queued: wait until Flower hears the worker's heartbeat.
        wait_until(
            lambda: _flower_sees_worker(port, stack.name), 30, interval=0.5, what="Flower events"
        )
        job_id = stack.submit(text=(FIXTURES / "news_multiple_sides.txt").read_text())["job_id"]
        assert stack.wait_job(job_id)["status"] == "succeeded"

        def listed() -> dict | None:
            tasks = httpx.get(url, auth=("ops", "secret"), timeout=5).json()
            return next(
                (
                    t
                    for t in tasks.values()
                    if t.get("name") == "evenhand.summarize_job"
                    and job_id in (t.get("args") or "")
                    and t.get("state") == "SUCCESS"
                ),
                None,
            )

        task = wait_until(listed, 30, interval=0.5, what="the task in Flower")
        assert task["routing_key"] == stack.env["EVENHAND_QUEUE"]
    finally:
        stop_process(flower)


def _flower_sees_worker(port: int, stack_name: str) -> bool:
    workers = httpx.get(
        f"http://127.0.0.1:{port}/api/workers",
        params={"status": 1},
        auth=("ops", "secret"),
        timeout=5,
    ).json()
    return any(stack_name in name and alive for name, alive in workers.items())


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
    except httpx.TransportError:
        return False
    return True


def test_up_runs_the_whole_stack_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    api_port, flower_port = free_port(), free_port()
    up = subprocess.Popen(
        [sys.executable, "-m", "evenhand.cli", "up", "--port", str(api_port), "--flower-port", str(flower_port)],
        env=without_llm_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=(tmp_path / "up.log").open("wb"), text=True,
    )  # fmt: skip
    try:
        key = wait_until(
            lambda: _read_key(up), 90, interval=0, what="the local key from `evenhand up`"
        )
        children = psutil.Process(up.pid).children(recursive=True)
        assert len(children) >= 4  # redis, api, worker, flower
        with httpx.Client(
            base_url=f"http://127.0.0.1:{api_port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=40,
        ) as client:
            job_id = client.post(
                "/v1/articles", json={"text": (FIXTURES / "opinion_boilerplate.txt").read_text()}
            ).json()["job_id"]

            def finished() -> dict | None:
                job = client.get(f"/v1/jobs/{job_id}", params={"wait": 5}).json()
                return job if job["status"] in {"succeeded", "failed"} else None

            job = wait_until(finished, 60, interval=0, what="the job under `evenhand up`")
        assert job["status"] == "succeeded" and job["result"]["provider"] == "extractive"
        wait_until(
            lambda: _answers(f"http://127.0.0.1:{flower_port}/"),
            30,
            what="Flower under `evenhand up`",
        )
        flower = httpx.get(f"http://127.0.0.1:{flower_port}/", timeout=5)
        assert flower.status_code == 401  # basic auth unless --flower-no-auth
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
        _gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"still running after Ctrl-C: {[p.pid for p in alive]}"
        assert (tmp_path / "var" / "evenhand.db").exists()
    finally:
        stop_process(up)


def _read_key(up: subprocess.Popen[str]) -> str | None:
    assert up.stdout is not None
    line = up.stdout.readline()
    if not line and up.poll() is not None:
        raise AssertionError(f"`evenhand up` exited with {up.returncode}")
    return line.strip() if line.startswith("eh_") else None


def test_eval_prints_figures_for_every_article(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "evenhand.cli", "eval", str(FIXTURES), "--json"],
        env=without_llm_env(), cwd=tmp_path, capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    rows = json.loads(done.stdout)
    articles = sorted(p.name for p in FIXTURES.iterdir() if p.suffix in (".txt", ".html"))
    assert [row["article"] for row in rows] == [*articles, "overall"]
    by_name = {row["article"]: row for row in rows}
    assert by_name["boilerplate_only.txt"]["error"] == "no_article_text"
    assert by_name["opinion_boilerplate.txt"]["lines_removed"] > 5
    assert (
        by_name["opinion_boilerplate.txt"]["verified"]
        == by_name["opinion_boilerplate.txt"]["quotes"]
        > 0
    )
    overall = by_name["overall"]
    assert overall["quotes"] == sum(row["quotes"] for row in rows[:-1])
    assert overall["error"] == "1 failed" and overall["llm_calls"] == 0
    table = subprocess.run(
        [sys.executable, "-m", "evenhand.cli", "eval", str(FIXTURES)],
        env=without_llm_env(), cwd=tmp_path, capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    assert "extractive" in table.stdout and "overall" in table.stdout


@sqlite_only
def test_list_cancel_and_retry_from_the_command_line(stack: Stack, tmp_path: Path) -> None:
    key = stack.new_key("cli-manager")
    client_env = {"EVENHAND_API_URL": stack.api_url, "EVENHAND_API_KEY": key}
    article = tmp_path / "article.txt"
    article.write_text(fresh_text("single_sentence.txt"), encoding="utf-8")  # no stored result
    stack.llm.control(hold=True)  # the job stays running until it is canceled
    accepted = json.loads(stack.run_cli("submit", str(article), **client_env).stdout)
    job_id = accepted["job_id"]
    wait_until(lambda: stack.llm.stats()["in_flight"] == 1, 60, what="the job's LLM call")
    canceled = stack.run_cli("cancel", job_id, **client_env)
    assert f"job {job_id} is canceled" in canceled.stdout
    again = stack.run_cli("cancel", job_id, check=False, **client_env)
    assert again.returncode == 1 and "409" in again.stderr and "canceled" in again.stderr
    listed = json.loads(
        stack.run_cli("list", "--status", "canceled", "--json", **client_env).stdout
    )
    assert [job["id"] for job in listed["items"]] == [job_id]
    stack.llm.control(hold=False)
    assert f"job {job_id} is queued" in stack.run_cli("retry", job_id, **client_env).stdout
    assert stack.wait_job(job_id, key=key)["status"] == "succeeded"
    table = stack.run_cli("list", COLUMNS="160", **client_env).stdout  # a wide terminal
    assert job_id in table and "succeeded" in table
