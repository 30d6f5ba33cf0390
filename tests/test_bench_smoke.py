"""`python -m bench --quick` runs end to end and reports every figure as a number.

A smoke test of the benchmark harness only: benchmarks are not tests, so nothing here asserts a
timing or a target.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.figures import DEFAULT_CONCURRENCY, DEFAULT_POOL

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.e2e

# one key per figure (docs/benchmarks.md lists them all)
FIGURES = [
    f"jobs_per_s_{DEFAULT_POOL}_{DEFAULT_CONCURRENCY}",  # 1. worker concurrency, default pool
    f"max_in_flight_{DEFAULT_POOL}_{DEFAULT_CONCURRENCY}",
    "worker_cpu_ms_per_job",  # 2. worker overhead
    "pipeline_cpu_ms_per_job",
    "bare_req_per_s_c8",  # 3. API vs a bare FastAPI app
    "post_ratio_c8",
    "get_ratio_c8",
    "latency_median_ms",  # 4. latency
    "latency_p99_ms",
    "scale_get_job_ratio",  # 5. scale
    "scale_list_jobs_ratio",
    "memory_jobs",  # 6. memory
    "worker_rss_end_mb",
    "worker_rss_growth_mb",
    "api_rss_end_mb",
]


def test_bench_quick_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    results = json.loads(out.read_text())
    assert results["mode"] == "quick"
    assert {"cpu", "cores", "ram_gb", "python"} <= results["machine"].keys()
    values = {row["key"]: row["value"] for row in results["table"]}
    for key in FIGURES:
        assert key in values, f"{key} missing from the table"
        assert isinstance(values[key], (int, float)) and not math.isnan(values[key]), key
