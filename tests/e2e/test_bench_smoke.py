"""`python -m bench --quick` runs end to end and reports every figure as a number.

A smoke test of the benchmark harness only: benchmarks are not tests, so nothing here asserts a
timing or a target. Also the service choice the benchmarks share with the tests.
"""

import json
import math
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench.figures import DEFAULT_CONCURRENCY, DEFAULT_POOL
from testkit.stack import configured_or_embedded

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e

# one key per figure (docs/benchmarks.md lists them all)
FIGURES = [
    f"jobs_per_s_{DEFAULT_POOL}_{DEFAULT_CONCURRENCY}",  # 1. worker concurrency, default pool
    f"max_in_flight_{DEFAULT_POOL}_{DEFAULT_CONCURRENCY}",
    "worker_cpu_ms_per_job",  # 2. worker overhead
    "worker_cpu_ms_per_job_draft_only",
    "pipeline_cpu_ms_per_job",
    "bare_req_per_s_c8",  # 3. API vs a bare FastAPI app
    "post_ratio_c8",
    "get_ratio_c8",
    "submit_vs_peer_postgresql",  # 3. POST vs the tutorial peer
    "submit_vs_peer_sqlite",
    "latency_median_ms",  # 4. latency
    "latency_p99_ms",
    "scale_get_job_ratio",  # 5. scale
    "scale_list_jobs_ratio",
    "memory_jobs",  # 6. memory
    "worker_rss_end_mb",
    "worker_rss_growth_mb",
    "api_rss_end_mb",
    "cli_evenhand_help_ms",  # 7. CLI start
    "cli_evenhand_status_ms",
    "cli_celery_help_ms",
    "cli_help_vs_celery",
]


def test_bench_quick_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    results = json.loads(out.read_text())
    assert results["mode"] == "quick"
    assert {"cpu", "cores", "ram_gb", "python"} <= results["machine"].keys()
    values = {row["key"]: row["value"] for row in results["table"]}
    for key in FIGURES:
        assert key in values, f"{key} missing from the table"
        assert isinstance(values[key], (int, float)) and not math.isnan(values[key]), key
    scale = results["figures"]["scale"]
    assert scale["small_jobs"] == 1_000  # a database of the figure's own, nothing else in it
    assert scale["measured_job_points"] and scale["measured_job_evidence"]
    cli = results["figures"]["cli"]  # the status command ran into the unreachable API
    assert cli["evenhand_status_exit"] == 1 and "Cannot reach" in cli["evenhand_status_says"]
    memory = results["figures"]["memory"]
    assert memory["jobs_submitted"] == memory["jobs_target"]


@contextmanager
def _embedded() -> Iterator[str]:
    yield "embedded://"


def test_service_choice_configured_then_local_then_embedded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        local = f"redis://127.0.0.1:{listening.getsockname()[1]}/0"
        monkeypatch.setenv("BENCH_TEST_URL", "redis://configured/0")
        with configured_or_embedded("BENCH_TEST_URL", _embedded, local) as url:
            assert url == "redis://configured/0"
        monkeypatch.delenv("BENCH_TEST_URL")
        with configured_or_embedded("BENCH_TEST_URL", _embedded, local) as url:
            assert url == local
        with configured_or_embedded("BENCH_TEST_URL", _embedded) as url:
            assert url == "embedded://"
    with configured_or_embedded("BENCH_TEST_URL", _embedded, local) as url:
        assert url == "embedded://"  # the local port no longer answers
