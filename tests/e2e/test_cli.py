"""The `evenhand` command as users run it: the client commands, the offline pipeline, Flower and
`evenhand up`."""

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from evenhand.embedded import free_port
from testkit.fixtures import FIXTURES, fresh_text
from testkit.stack import ROOT, Stack, fresh_database, stop_process, wait_until

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


def new_user_env(home: Path) -> dict[str, str]:
    """A user with nothing configured: no evenhand variables, fresh per-user config and data."""
    env = without_llm_env()
    env["XDG_CONFIG_HOME"] = str(home / "config")
    env["XDG_DATA_HOME"] = str(home / "data")
    return env


def run_evenhand(
    *args: str, env: dict[str, str], cwd: Path, input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evenhand.cli", *args],
        env=env, cwd=cwd, input=input, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


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
    shown = stack.run_cli("status", job["id"], **client_env).stdout
    assert f"job {job['id']} succeeded" in shown and "Thesis" in shown


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
def test_client_errors_say_what_to_fix(stack: Stack, tmp_path: Path) -> None:
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
    env["EVENHAND_CONFIG_DIR"] = str(tmp_path / "no-config")  # no saved key either
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


@dataclass
class Up:
    """A running `evenhand up` of a new user, on free ports."""

    process: subprocess.Popen[str]
    env: dict[str, str]
    home: Path
    api_port: int
    flower_port: int
    metrics_port: int
    key: str

    @property
    def log(self) -> str:
        return (self.home / "up.log").read_text(errors="replace")


def start_up(home: Path, *extra: str, **env: str) -> Up:
    """`evenhand up` as a user runs it, until it prints its key (it is then ready)."""
    home.mkdir(parents=True, exist_ok=True)
    api_port, flower_port, metrics_port = free_port(), free_port(), free_port()
    full_env = {**new_user_env(home), **env}
    process = subprocess.Popen(
        [sys.executable, "-m", "evenhand.cli", "up", "--port", str(api_port),
         "--flower-port", str(flower_port), "--worker-metrics-port", str(metrics_port), *extra],
        env=full_env, cwd=home, stdout=subprocess.PIPE, stderr=(home / "up.log").open("ab"), text=True,
    )  # fmt: skip
    try:
        key = wait_until(
            lambda: _read_key(process), 120, interval=0, what="the local key from `evenhand up`"
        )
    except BaseException:
        stop_process(process, timeout=60)  # type: ignore[arg-type]
        raise
    return Up(process, full_env, home, api_port, flower_port, metrics_port, key)


def stop_up(up: Up, how: signal.Signals = signal.SIGINT) -> None:
    """Ctrl-C (or `kill`), as a user stops it; every child must be gone afterwards."""
    children = psutil.Process(up.process.pid).children(recursive=True)
    up.process.send_signal(how)
    assert up.process.wait(60) == 0
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"still running after Ctrl-C: {[p.pid for p in alive]}"


FLOWER_PASSWORD = "flower-pw-that-must-not-show-in-ps"


@pytest.fixture(scope="module")
def running_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    up = start_up(
        tmp_path_factory.mktemp("up-user"), EVENHAND_FLOWER_BASIC_AUTH=f"ops:{FLOWER_PASSWORD}"
    )
    try:
        yield up
    finally:
        stop_process(up.process, timeout=60)  # type: ignore[arg-type]


def test_up_stops_everything_on_sigterm(tmp_path: Path) -> None:
    up = start_up(tmp_path)
    try:
        stop_up(up, signal.SIGTERM)  # what `kill`, systemd and docker send
    finally:
        stop_process(up.process, timeout=60)  # type: ignore[arg-type]


def test_up_is_ready_when_it_says_so_and_submit_wait_needs_no_variables(
    running_up: Up, tmp_path: Path
) -> None:
    up = running_up
    # everything answers as soon as the key is printed: no waiting on our side
    assert httpx.get(f"http://127.0.0.1:{up.api_port}/readyz", timeout=5).status_code == 200
    workers = httpx.get(
        f"http://127.0.0.1:{up.flower_port}/api/workers",
        auth=("ops", FLOWER_PASSWORD),
        timeout=5,
    )
    assert workers.status_code == 200
    assert (
        "evenhand_llm_tokens_total"
        in httpx.get(f"http://127.0.0.1:{up.metrics_port}/metrics", timeout=5).text
    )
    assert "Inspect method" not in up.log
    # the config file `up` wrote is the only place the client finds its server and key
    config = up.home / "config" / "evenhand" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert up.key in config.read_text()
    client_env = new_user_env(up.home)  # no EVENHAND_API_KEY, no EVENHAND_API_URL
    article = tmp_path / "article.txt"
    article.write_text((FIXTURES / "opinion_boilerplate.txt").read_text(), encoding="utf-8")
    done = run_evenhand("submit", str(article), "--wait", env=client_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "succeeded" in done.stdout and "Thesis" in done.stdout
    listed = run_evenhand("list", "--json", env=client_env, cwd=tmp_path)
    job_id = json.loads(listed.stdout)["items"][0]["id"]
    status = run_evenhand("status", job_id, env=client_env, cwd=tmp_path)
    assert f"job {job_id} succeeded" in status.stdout


def test_up_keeps_secrets_off_command_lines_and_listens_on_loopback_only(running_up: Up) -> None:
    up = running_up
    children = psutil.Process(up.process.pid).children(recursive=True)
    assert len(children) >= 4  # redis, api, worker, flower
    for child in [psutil.Process(up.process.pid), *children]:
        command_line = " ".join(child.cmdline())
        assert FLOWER_PASSWORD not in command_line, command_line
        assert up.key not in command_line, command_line
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert FLOWER_PASSWORD not in ps
    listening = {
        (conn.laddr.ip, conn.laddr.port)
        for child in children
        for conn in child.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    }
    ports = {port for _ip, port in listening}
    assert {up.api_port, up.flower_port, up.metrics_port} <= ports
    assert {ip for ip, _port in listening} == {"127.0.0.1"}, listening


def test_a_second_up_on_the_same_ports_says_which_port_is_busy(
    running_up: Up, tmp_path: Path
) -> None:
    up = running_up
    second = run_evenhand(
        "up", "--port", str(up.api_port), "--flower-port", str(free_port()),
        "--worker-metrics-port", str(free_port()), env=new_user_env(tmp_path), cwd=tmp_path,
        timeout=60,
    )  # fmt: skip
    assert second.returncode == 2
    assert f"port {up.api_port} (the API) is in use" in second.stderr
    assert "--port" in second.stderr
    assert "evenhand is up" not in second.stderr and "eh_" not in second.stdout
    assert "Traceback" not in second.stderr
    assert not (tmp_path / "data" / "evenhand" / "evenhand.db").exists()  # nothing was started


@pytest.mark.parametrize(
    ("option", "what"),
    [("--port", "the API"), ("--flower-port", "Flower"),
     ("--worker-metrics-port", "the worker's metrics")],
)  # fmt: skip
def test_up_refuses_a_busy_port_before_starting_anything(
    option: str, what: str, tmp_path: Path
) -> None:
    with socket.socket() as occupied:
        occupied.bind(("127.0.0.1", 0))
        occupied.listen()
        busy = occupied.getsockname()[1]
        ports = {"--port": free_port(), "--flower-port": free_port(),
                 "--worker-metrics-port": free_port(), option: busy}  # fmt: skip
        done = run_evenhand(
            "up", *(arg for pair in ports.items() for arg in (pair[0], str(pair[1]))),
            env=new_user_env(tmp_path), cwd=tmp_path, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"port {busy} ({what}) is in use" in done.stderr
    assert f"another port with {option}" in done.stderr
    assert "Traceback" not in done.stderr and "evenhand is up" not in done.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "var").exists()


def test_up_stops_everything_on_ctrl_c_and_reuses_its_key(tmp_path: Path) -> None:
    first = start_up(tmp_path)
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{first.api_port}",
            headers={"Authorization": f"Bearer {first.key}"},
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
        flower = httpx.get(f"http://127.0.0.1:{first.flower_port}/", timeout=5)
        assert flower.status_code == 401  # fresh basic auth credentials unless --flower-no-auth
        stop_up(first)
    finally:
        stop_process(first.process, timeout=60)  # type: ignore[arg-type]
    # the database lives in the per-user data folder, not in the folder `up` ran in
    assert (tmp_path / "data" / "evenhand" / "evenhand.db").exists()
    assert not (tmp_path / "var").exists()
    second = start_up(tmp_path)
    try:
        assert second.key == first.key  # the saved key, still valid in this database
        keys = run_evenhand("keys", "list", env=second.env, cwd=tmp_path)
        assert keys.stdout.count("local-") == 1, keys.stdout
        stop_up(second)
    finally:
        stop_process(second.process, timeout=60)  # type: ignore[arg-type]


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


def test_keys_create_in_an_empty_folder_makes_the_users_database(tmp_path: Path) -> None:
    env = new_user_env(tmp_path)
    folder = tmp_path / "anywhere"
    folder.mkdir()
    created = run_evenhand("keys", "create", "team", env=env, cwd=folder)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().splitlines()[-1].startswith("eh_")
    assert "Traceback" not in created.stderr
    assert list(folder.iterdir()) == []  # no stray ./var
    assert (tmp_path / "data" / "evenhand" / "evenhand.db").exists()
    listed = run_evenhand("keys", "list", env=env, cwd=folder)
    assert listed.returncode == 0 and "team" in listed.stdout


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_key_commands_on_an_unmigrated_database_say_to_migrate(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = new_user_env(tmp_path)
    with contextlib.ExitStack() as resources:
        if database == "postgres":
            server = request.getfixturevalue("postgres_server_url")
            env["DATABASE_URL"] = resources.enter_context(fresh_database(server))
        else:
            env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'empty.db'}"
        for command in (("keys", "create", "team"), ("keys", "list"), ("keys", "revoke", "1")):
            done = run_evenhand(*command, env=env, cwd=tmp_path)
            assert done.returncode == 1, (command, done.stderr)
            assert "run `evenhand migrate`" in done.stderr, done.stderr
            assert "Traceback" not in done.stderr
        assert run_evenhand("migrate", env=env, cwd=tmp_path).returncode == 0
        assert run_evenhand("keys", "create", "team", env=env, cwd=tmp_path).returncode == 0


def test_an_unreachable_database_is_named_without_its_password(tmp_path: Path) -> None:
    env = new_user_env(tmp_path)
    env["DATABASE_URL"] = f"postgresql+psycopg://evenhand:s3cret@127.0.0.1:{free_port()}/x"
    done = run_evenhand("keys", "list", env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert "Cannot use the database" in done.stderr and "DATABASE_URL" in done.stderr
    assert "s3cret" not in done.stderr and "Traceback" not in done.stderr


def test_out_of_range_key_options_get_a_clear_message(stack: Stack) -> None:
    too_big = stack.run_cli("keys", "create", "big", "--daily-tokens", "100000000000", check=False)
    assert too_big.returncode == 2
    assert "--daily-tokens" in too_big.stderr and "2147483647" in too_big.stderr
    assert "Traceback" not in too_big.stderr
    negative = stack.run_cli("keys", "create", "neg", "--daily-jobs", "-1", check=False)
    assert negative.returncode == 2 and "--daily-jobs" in negative.stderr
    long_name = stack.run_cli("keys", "create", "n" * 201, check=False)
    assert long_name.returncode == 2 and "1 to 200 characters" in long_name.stderr
    bad_rate = stack.run_cli("keys", "create", "r", "--rate-limit", "lots", check=False)
    assert bad_rate.returncode == 2 and "not a rate limit" in bad_rate.stderr
    no_such_id = stack.run_cli("keys", "revoke", "99999999999", check=False)
    assert no_such_id.returncode == 2 and "Traceback" not in no_such_id.stderr
    # the largest value the column holds is accepted, on SQLite and on PostgreSQL alike
    largest = stack.run_cli("keys", "create", "largest", "--daily-tokens", "2147483647")
    assert "tokens/day=2147483647" in stack.run_cli("keys", "list", COLUMNS="200").stdout
    assert largest.stdout.strip().startswith("eh_")


@sqlite_only
def test_login_checks_the_key_and_saves_it_for_the_client(stack: Stack, tmp_path: Path) -> None:
    env = new_user_env(tmp_path)
    refused = run_evenhand(
        "login", "--api-url", stack.api_url, input="eh_wrong\n", env=env, cwd=tmp_path
    )
    assert refused.returncode == 1 and "401" in refused.stderr and "nothing saved" in refused.stderr
    assert not (tmp_path / "config").exists()
    # the key on standard input, not on the command line
    accepted = run_evenhand(
        "login", "--api-url", stack.api_url, input=f"{stack.key}\n", env=env, cwd=tmp_path
    )
    assert accepted.returncode == 0, accepted.stderr
    config = tmp_path / "config" / "evenhand" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    article = tmp_path / "article.txt"
    article.write_text(fresh_text("single_sentence.txt"), encoding="utf-8")
    done = run_evenhand("submit", str(article), "--wait", env=env, cwd=tmp_path)
    assert done.returncode == 0 and "succeeded" in done.stdout, done.stderr
    # --api-url and --key name another server for one command, whatever is saved
    elsewhere = run_evenhand(
        "list", "--api-url", f"http://127.0.0.1:{free_port()}", "--key", "eh_x",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert elsewhere.returncode == 1 and "Cannot reach the evenhand API" in elsewhere.stderr


@sqlite_only
def test_batch_submits_files_through_the_providers_batch_api_and_waits(
    stack: Stack, tmp_path: Path
) -> None:
    key = stack.new_key("cli-batch")
    client_env = {"EVENHAND_API_URL": stack.api_url, "EVENHAND_API_KEY": key}
    files = []
    for name in ("short_opinion.txt", "news_multiple_sides.txt"):
        path = tmp_path / name
        path.write_text(fresh_text(name), encoding="utf-8")  # no stored result
        files.append(str(path))
    done = json.loads(
        stack.run_cli("batch", *files, "--provider-batch", "--wait", "--json", **client_env).stdout
    )
    assert done["mode"] == "provider_batch" and done["finished"]
    assert [job["status"] for job in done["jobs"]] == ["succeeded", "succeeded"]
    assert all(job["result"]["grounding"]["verified"] > 0 for job in done["jobs"])
    assert done["provider_batches"][0]["status"] == "completed"
    assert stack.llm.stats()["requests"] == 0  # not one live call

    stack.llm.control(batch="fail")
    another = tmp_path / "another.txt"
    another.write_text(fresh_text("short_opinion.txt"), encoding="utf-8")
    shown = stack.run_cli(
        "batch", str(another), "--provider-batch", "--wait", check=False, **client_env
    )
    assert shown.returncode == 1
    flat = " ".join(shown.stdout.split())  # rich wraps long lines
    assert "provider_batch · 1 article: 1 failed" in flat
    assert "provider_batch_failed" in flat and "told to fail this batch" in flat

    missing = stack.run_cli("batch", str(tmp_path / "nope.txt"), check=False, **client_env)
    assert missing.returncode == 2 and "Cannot read" in missing.stderr + missing.stdout
