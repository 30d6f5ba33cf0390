"""python -m bench [--quick] [--out PATH]: evenhand's benchmarks against their targets.

Starts its own evenhand API and workers (real processes) over PostgreSQL (a fresh database;
figure 5 gets a second API on a database of its own) and Redis, with testkit/fake_llm.py as the
LLM; prints the table and writes the results as JSON. The full run also writes
docs/benchmarks.md's table and the plots under docs/. `--only real_server` (never part of the
default run) measures jobs/min through llama.cpp's real server on a real model instead, and draws
its plot.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import figures
from bench.env import RssSampler, bench_stack, machine, services

ROOT = Path(__file__).resolve().parent.parent
console = Console(width=140)


# in run order; each title starts with the figure's number, as its table rows do
STEPS = [
    ("concurrency", "1. worker concurrency"),
    ("overhead", "2. worker overhead"),
    ("api", "3. API req/s"),
    ("submit", "3. submit vs the tutorial peer"),
    ("latency", "4. latency"),
    ("memory", "6. memory"),
    ("scale", "5. scale"),
]
# figures that need no evenhand stack: run first, and alone without starting one
STANDALONE_STEPS = [("cli", "7. CLI start")]
# figures that start what they measure themselves and take many minutes: only with --only
OPT_IN_STEPS = [
    ("real_server", "8. real llama.cpp server"),
    ("cost", "9. cost per article"),
    ("provider_batch", "10. provider_batch against live"),
]


def log(message: str) -> None:
    console.print(message, style="dim")


def rows(results: dict[str, Any], quick: bool) -> list[dict[str, Any]]:
    """(figure, measured, target, pass) rows; every figure is a number or NaN if it failed."""
    r = results["figures"]
    out: list[dict[str, Any]] = []

    def add(key: str, name: str, value: Any, target: str, ok: bool | None, unit: str = "") -> None:
        num = float(value) if isinstance(value, (int, float)) else float("nan")
        out.append(
            {
                "key": key,
                "figure": name,
                "value": num,
                "unit": unit,
                "target": target,
                "pass": ok if not math.isnan(num) else False,
            }
        )

    c = r.get("concurrency", {})
    if "runs" in c:
        for run in c["runs"]:
            label = f"{run['pool']}/{run['concurrency']}"
            default_run = figures.is_default(run)
            add(
                f"jobs_per_s_{run['pool']}_{run['concurrency']}",
                f"1. jobs/s sustained, 1 s LLM, {label}" + (" (default)" if default_run else ""),
                run.get("jobs_per_s"),
                ">= 57 jobs/s (default worker)" if default_run else "-",
                (run.get("jobs_per_s", 0) >= 57) if default_run else None,
                "jobs/s",
            )
            add(
                f"jobs_per_s_with_ramp_{run['pool']}_{run['concurrency']}",
                f"1. jobs/s from first submit to last finish, {label}",
                run.get("jobs_per_s_with_ramp"),
                "reported" if default_run else "-",
                None,
                "jobs/s",
            )
            add(
                f"max_in_flight_{run['pool']}_{run['concurrency']}",
                f"1. LLM calls in flight, {label}",
                run.get("max_in_flight"),
                ">= 64 (default worker)" if default_run else "-",
                ((run.get("max_in_flight") or 0) >= 64) if default_run else None,
            )
    else:
        default_key = f"jobs_per_s_{figures.DEFAULT_POOL}_{figures.DEFAULT_CONCURRENCY}"
        add(default_key, "1. jobs/s (default)", None, ">= 57", False)
    o = r.get("overhead", {})
    add(
        "worker_cpu_ms_per_job",
        "2. worker CPU per job (instant LLM, 5,000 chars)",
        o.get("worker_cpu_ms_per_job"),
        "<= 10 ms",
        (o.get("worker_cpu_ms_per_job") or 1e9) <= 10,
        "ms",
    )
    add(
        "worker_cpu_ms_per_job_draft_only",
        "2. the same, draft only (no refine, no support check)",
        o.get("worker_cpu_ms_per_job_draft_only"),
        "<= 10 ms",
        (o.get("worker_cpu_ms_per_job_draft_only") or 1e9) <= 10,
        "ms",
    )
    add(
        "pipeline_cpu_ms_per_job",
        "2. in-process pipeline CPU per job (prepare+analyse)",
        o.get("pipeline_cpu_ms_per_job"),
        "-",
        None,
        "ms",
    )
    a = r.get("api", {})
    for c in [c for c in (32, 8) if f"bare_c{c}" in a] or [8]:
        add(
            f"bare_req_per_s_c{c}",
            f"3. bare FastAPI GET, {c} conns",
            (a.get(f"bare_c{c}") or {}).get("req_per_s"),
            "baseline",
            None,
            "req/s",
        )
        for route, label, target in (
            ("post", "POST /v1/articles", 0.25),
            ("get", "GET /v1/jobs/{id}", 0.5),
        ):
            res = a.get(f"{route}_c{c}") or {}
            errs = (res.get("non_2xx") or 0) + (res.get("socket_errors") or 0)
            add(
                f"{route}_req_per_s_c{c}",
                f"3. {label}, {c} conns (2xx only)" + (f"; {errs} errors/timeouts" if errs else ""),
                a.get(f"{route}_c{c}_ok_req_per_s"),
                f">= {int(target * 100)}% of bare",
                None,
                "req/s",
            )
            ratio = a.get(f"{route}_c{c}_ratio")
            add(
                f"{route}_ratio_c{c}",
                f"3. {label} / bare, {c} conns",
                ratio,
                f">= {target}",
                (ratio or 0) >= target,
            )
    submit = r.get("submit", {})
    for db in ("postgresql", "sqlite"):
        side = submit.get(db, {})
        add(f"submit_peer_{db}", f"3. tutorial peer POST, {db}, 8 conns", side.get("peer_req_per_s"), "baseline", None, "req/s")  # fmt: skip
        add(f"submit_evenhand_{db}", f"3. POST /v1/articles, {db}, 8 conns", side.get("evenhand_req_per_s"), "-", None, "req/s")  # fmt: skip
        ratio = side.get("evenhand_over_peer")
        add(f"submit_vs_peer_{db}", f"3. POST /v1/articles / tutorial peer, {db}", ratio, ">= 1.0", (ratio or 0) >= 1.0)  # fmt: skip
    lat = r.get("latency", {})
    add(
        "latency_median_ms",
        "4. submit -> succeeded seen, median",
        lat.get("median_ms"),
        "<= 100 ms",
        (lat.get("median_ms") or 1e9) <= 100,
        "ms",
    )
    add(
        "latency_p99_ms",
        "4. submit -> succeeded seen, p99",
        lat.get("p99_ms"),
        "reported",
        None,
        "ms",
    )
    s = r.get("scale", {})
    big = f"{s.get('large_jobs', '?'):,}" if isinstance(s.get("large_jobs"), int) else "?"
    small = f"{s.get('small_jobs', '?'):,}" if isinstance(s.get("small_jobs"), int) else "1k"
    add(
        "scale_get_job_ratio",
        f"5. GET /v1/jobs/{{id}} at {big} / at {small} jobs",
        s.get("get_job_ratio"),
        "<= 2x",
        (s.get("get_job_ratio") or 1e9) <= 2,
    )
    add(
        "scale_list_jobs_ratio",
        f"5. GET /v1/jobs page at {big} / at {small} jobs",
        s.get("list_jobs_ratio"),
        "<= 2x",
        (s.get("list_jobs_ratio") or 1e9) <= 2,
    )
    add(
        "scale_get_job_ms_large",
        f"5. GET /v1/jobs/{{id}} median at {big}",
        (s.get("large") or {}).get("get_job_ms"),
        "-",
        None,
        "ms",
    )
    add(
        "scale_list_jobs_ms_large",
        f"5. GET /v1/jobs page median at {big}",
        (s.get("large") or {}).get("list_jobs_ms"),
        "-",
        None,
        "ms",
    )
    m = r.get("memory", {})
    jobs_target = m.get("jobs_target", 10_000)
    add(
        "memory_jobs",
        "6. jobs succeeded in the memory run",
        m.get("jobs_succeeded"),
        f"{jobs_target:,}" + (" (quick)" if quick else ""),
        (m.get("jobs_succeeded") or 0) >= jobs_target,
    )
    w = m.get("worker_rss_mb") or {}
    add("worker_rss_end_mb", "6. worker RSS at end", w.get("end"), "reported", None, "MB")
    add(
        "worker_rss_growth_mb",
        "6. worker RSS growth, start -> end",
        m.get("worker_growth_mb"),
        "no growth (< 10 MB)",
        (m.get("worker_growth_mb") if m.get("worker_growth_mb") is not None else 1e9) < 10,
        "MB",
    )
    ap = m.get("api_rss_mb") or {}
    add("api_rss_end_mb", "6. API RSS at end", ap.get("end"), "reported", None, "MB")
    add(
        "api_rss_growth_mb",
        "6. API RSS growth, start -> end",
        m.get("api_growth_mb"),
        "no growth (< 10 MB)",
        (m.get("api_growth_mb") if m.get("api_growth_mb") is not None else 1e9) < 10,
        "MB",
    )
    cli = r.get("cli", {})
    add(
        "cli_evenhand_help_ms",
        "7. `evenhand --help`, median start to exit",
        cli.get("evenhand_help_ms"),
        "< 1000 ms",
        (cli.get("evenhand_help_ms") or 1e9) < 1000,
        "ms",
    )
    add(
        "cli_evenhand_status_ms",
        "7. `evenhand status ID`, no API there (exit 1)",
        cli.get("evenhand_status_ms"),
        "<= `celery --help`",
        (cli.get("status_vs_celery") or 1e9) <= 1,
        "ms",
    )
    add(
        "cli_celery_help_ms",
        "7. `celery --help`",
        cli.get("celery_help_ms"),
        "baseline",
        None,
        "ms",
    )
    add(
        "cli_help_vs_celery",
        "7. `evenhand --help` / `celery --help`",
        cli.get("help_vs_celery"),
        "<= 1",
        (cli.get("help_vs_celery") or 1e9) <= 1,
    )
    for run in r.get("real_server", {}).get("runs", []):
        label = f"slots {run['slots']}, worker concurrency {run['concurrency']}"
        suffix = f"s{run['slots']}_c{run['concurrency']}"
        add(f"real_jobs_per_min_{suffix}", f"8. jobs/min, {label}", run.get("jobs_per_min"),
            "reported", None, "jobs/min")  # fmt: skip
        add(f"real_all_slots_busy_{suffix}", f"8. share of time all slots busy, {label}",
            run.get("all_slots_busy_share"), "reported", None)  # fmt: skip
        add(f"real_generated_tokens_per_s_{suffix}", f"8. generated tokens/s, {label}",
            run.get("generated_tokens_per_s"), "reported", None, "tokens/s")  # fmt: skip
    # figures left out by --only get no rows; one that failed keeps its "error" rows
    steps = [*STEPS, *STANDALONE_STEPS, *OPT_IN_STEPS]
    ran = {title.split(".", 1)[0] for key, title in steps if key in r}
    return [row for row in out if row["figure"].split(".", 1)[0] in ran]


def fmt(value: float) -> str:
    if math.isnan(value):
        return "error"
    value += 0.0  # no "-0" for a growth that rounded to -0.0
    if value == int(value) and abs(value) >= 10:
        return f"{int(value):,}"
    return f"{value:,.3g}" if abs(value) < 10 else f"{value:,.1f}"


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("pass" if ok else "FAIL")


def print_table(results: dict[str, Any]) -> None:
    m = results["machine"]
    table = Table(
        title=f"evenhand benchmarks ({results['mode']}) - {m['cpu']}, {m['cores']} cores, "
        f"{m['ram_gb']} GB RAM, Python {m['python']}"
    )
    for col in ("figure", "measured", "target", "result"):
        table.add_column(col)
    for row in results["table"]:
        style = {True: "green", False: "red"}.get(row["pass"])
        table.add_row(
            row["figure"],
            f"{fmt(row['value'])} {row['unit']}".strip(),
            row["target"],
            verdict(row["pass"]),
            style=style,
        )
    console.print(table)


def markdown_table(results: dict[str, Any]) -> str:
    lines = ["| figure | measured | target | result |", "|---|---|---|---|"]
    for row in results["table"]:
        lines.append(
            f"| {row['figure']} | {fmt(row['value'])} {row['unit']} | {row['target']} | "
            f"{verdict(row['pass'])} |"
        )
    return "\n".join(lines)


START, END = "<!-- bench:table:start -->", "<!-- bench:table:end -->"


def write_docs_table(results: dict[str, Any], doc: Path) -> None:
    """Replace the table between the markers in docs/benchmarks.md (or start the file)."""
    m = results["machine"]
    block = (
        f"{START}\n"
        f"Run {results['started']} (`python -m bench`, {results['seconds']:.0f} s) on "
        f"{m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, Python {m['python']}, {m['os']}.\n\n"
        f"{markdown_table(results)}\n{END}"
    )
    text = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text += f"\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    doc.write_text(head + block + tail)


def plots(results: dict[str, Any], docs: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[str] = []

    @contextmanager
    def figure(name: str, title: str, xlabel: str, ylabel: str) -> Iterator[Any]:
        """Axes to draw on; labelled, saved as docs/`name` and closed afterwards."""
        fig, ax = plt.subplots(figsize=(7, 4.5))
        yield ax
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        fig.savefig(docs / name, dpi=100)
        plt.close(fig)
        written.append(name)

    runs = [
        r for r in results["figures"].get("concurrency", {}).get("runs", []) if "jobs_per_s" in r
    ]
    if runs:
        with figure(
            "bench-concurrency.png",
            "One evenhand worker: throughput vs concurrency",
            "worker concurrency",
            "jobs/s (1 s LLM latency)",
        ) as ax:
            for pool in sorted({r["pool"] for r in runs}):
                pts = sorted((r["concurrency"], r["jobs_per_s"]) for r in runs if r["pool"] == pool)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{pool} pool")
            xs = sorted({r["concurrency"] for r in runs})
            ax.plot(xs, xs, ls=":", color="grey", label="ceiling (concurrency / 1 s)")
            ax.axhline(57, ls="--", color="red", label="target 57 jobs/s")
            ax.set_xscale("log", base=2)
    lat = results["figures"].get("latency", {}).get("series_ms")
    if lat:
        with figure(
            "bench-latency.png",
            f"Job latency, instant LLM ({len(lat)} sequential jobs)",
            "percentile",
            "submit -> succeeded seen by a long-poll (ms)",
        ) as ax:
            ps = [*list(range(1, 100)), 99.5, 100]
            ax.plot(ps, [figures.pct(lat, p) for p in ps], marker=".")
            ax.axhline(100, ls="--", color="red", label="target median 100 ms")
    mem = results["figures"].get("memory", {}).get("series")
    if mem:
        with figure("bench-memory.png", "RSS during the memory run", "seconds", "MB") as ax:
            ax.plot([s[0] for s in mem], [s[1] for s in mem], label="worker RSS")
            ax.plot([s[0] for s in mem], [s[2] for s in mem], label="API RSS")
            ax.set_ylim(bottom=0)
    real = [
        r for r in results["figures"].get("real_server", {}).get("runs", []) if "jobs_per_min" in r
    ]
    if real:
        jobs = results["figures"]["real_server"]["jobs_per_configuration"]
        with figure(
            "bench-real-server.png",
            f"Real llama.cpp server, Qwen2.5-Coder-1.5B, {results['machine']['cores']} cores:"
            f" {jobs} jobs per point",
            "EVENHAND_WORKER_CONCURRENCY",
            "jobs/min (first submit to last finish)",
        ) as ax:
            for slots in sorted({r["slots"] for r in real}):
                pts = sorted(
                    (r["concurrency"], r["jobs_per_min"]) for r in real if r["slots"] == slots
                )
                ax.plot(
                    [p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{slots} slot(s)"
                )
                for r in (r for r in real if r["slots"] == slots):
                    ax.annotate(
                        f"{r['slots_busy_mean']:.1f}/{slots} busy",
                        (r["concurrency"], r["jobs_per_min"]),
                        textcoords="offset points",
                        xytext=(4, 6),
                        fontsize=8,
                    )
            ax.set_xticks(sorted({r["concurrency"] for r in real}))
            ax.set_ylim(0, max(r["jobs_per_min"] for r in real) * 1.25)  # room for the labels
    return written


def run_stack_steps(steps: list[str], quick: bool, results: dict[str, Any]) -> None:
    """The figures that measure a running evenhand, on one stack started for them."""
    with tempfile.TemporaryDirectory(prefix="evenhand-bench-") as tmpdir:
        tmp = Path(tmpdir)
        with (
            services(tmp) as (pg, redis_url),
            bench_stack("bench", pg, redis_url, tmp) as bench,
            RssSampler() as sampler,
        ):
            sampler.watch("api", bench.stack.processes["api"].pid)
            for key, title in STEPS:
                if key not in steps:
                    continue
                console.print(f"[bold]{title}[/bold]")
                t = time.time()
                try:
                    fn = getattr(figures, f"fig_{key}")
                    if key in ("overhead", "scale"):
                        results["figures"][key] = fn(bench, quick, log)
                    else:
                        results["figures"][key] = fn(bench, sampler, quick, log)
                except Exception as exc:
                    results["errors"][key] = f"{type(exc).__name__}: {exc}"
                    console.print(traceback.format_exc(), style="red")
                    for name in list(bench.stack.processes):
                        if name.startswith("w-"):
                            bench.stop_worker(name)
                results["figures"].setdefault(key, {})["bench_seconds"] = round(time.time() - t, 1)
            rss = sampler.samples.get("api", [])
            results["api_rss_mb_during_run"] = {
                "min": round(min(v for _, v in rss), 1) if rss else None,
                "max": round(max(v for _, v in rss), 1) if rss else None,
            }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (~75 s)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--only", nargs="*", help="run only these figures")
    args = parser.parse_args(argv)
    started = time.time()
    results: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "machine": machine(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "figures": {},
        "errors": {},
    }
    for key, title in STANDALONE_STEPS:
        if args.only and key not in args.only:
            continue
        console.print(f"[bold]{title}[/bold]")
        t = time.time()
        try:
            results["figures"][key] = getattr(figures, f"fig_{key}")(args.quick, log)
        except Exception as exc:
            results["errors"][key] = f"{type(exc).__name__}: {exc}"
            console.print(traceback.format_exc(), style="red")
        results["figures"].setdefault(key, {})["bench_seconds"] = round(time.time() - t, 1)
    if stack_steps := [key for key, _title in STEPS if not args.only or key in args.only]:
        run_stack_steps(stack_steps, args.quick, results)
    for key, title in OPT_IN_STEPS:
        if not args.only or key not in args.only:
            continue
        console.print(f"[bold]{title}[/bold]")
        t = time.time()
        try:
            results["figures"][key] = getattr(figures, f"fig_{key}")(args.quick, log)
        except Exception as exc:
            results["errors"][key] = f"{type(exc).__name__}: {exc}"
            console.print(traceback.format_exc(), style="red")
        results["figures"].setdefault(key, {})["bench_seconds"] = round(time.time() - t, 1)
    results["seconds"] = round(time.time() - started, 1)
    results["table"] = rows(results, args.quick)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print_table(results)
    o = results["figures"].get("overhead", {})
    if o.get("profile_top_tottime"):
        prof = Table(title="in-process pipeline profile (cProfile, own time per job)")
        prof.add_column("function")
        prof.add_column("tottime ms/job")
        prof.add_column("cumtime ms/job")
        for row in o["profile_top_tottime"][:12]:
            prof.add_row(
                row["function"][-90:],
                f"{row['tottime_ms_per_job']:.2f}",
                f"{row['cumtime_ms_per_job']:.2f}",
            )
        console.print(prof)
    if not args.quick and not args.only:
        docs = ROOT / "docs"
        written = plots(results, docs)
        write_docs_table(results, ROOT / "docs" / "benchmarks.md")
        console.print(f"plots: {', '.join(written)}; table: docs/benchmarks.md")
    elif not args.quick and "real_server" in results["figures"]:
        written = plots(results, ROOT / "docs")  # its own section of docs/benchmarks.md
        console.print(f"plots: {', '.join(written)}")
    console.print(f"results: {args.out} ({results['seconds']} s)")
    if results["errors"]:
        console.print(f"[red]errors: {results['errors']}[/red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
