"""docs/grafana-dashboard.json is importable and asks only for metrics and labels that exist."""

import ast
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
METRIC = r"\b((?:evenhand|process)_\w+)"

# prometheus_client's constructors, and the sample names each exposes
SUFFIXES = {
    "Counter": ("_total",),
    "CounterMetricFamily": ("_total",),
    "Gauge": ("",),
    "GaugeMetricFamily": ("",),
    "Histogram": ("_bucket", "_count", "_sum"),
    "HistogramMetricFamily": ("_bucket", "_count", "_sum"),
    "Summary": ("_count", "_sum"),
    "SummaryMetricFamily": ("_count", "_sum"),
}


def defined_metrics() -> dict[str, tuple[str, set[str]]]:
    """Every metric constructed in kernel/, api/ or worker/ (imported or not, module level or
    inside a class): name -> (constructor, labels)."""
    found: dict[str, tuple[str, set[str]]] = {}
    for path in sorted(
        p for floor in ("kernel", "api", "worker") for p in (ROOT / floor).rglob("*.py")
    ):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            kind = getattr(node.func, "id", getattr(node.func, "attr", None))
            if kind not in SUFFIXES or not node.args:
                continue
            name = node.args[0]
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                continue  # collections.Counter(...) and the like
            labels = next(
                (k.value for k in node.keywords if k.arg in {"labelnames", "labels"}),
                node.args[2] if len(node.args) > 2 else None,
            )
            label_names = set(ast.literal_eval(labels)) if labels is not None else set()
            found[name.value.removesuffix("_total")] = (kind, label_names)
    return found


def exported() -> dict[str, set[str]]:
    """Sample names evenhand exposes, with their labels (plus the standard process metrics)."""
    names: dict[str, set[str]] = {"process_resident_memory_bytes": set()}
    for name, (kind, labels) in defined_metrics().items():
        for suffix in SUFFIXES[kind]:
            names[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def test_the_scan_finds_metrics_of_every_kind_and_floor() -> None:
    metrics = defined_metrics()
    # one of each: a worker histogram (kernel/metrics.py), a scrape-time gauge family, and the
    # API's own, constructed inside classes in api/
    assert metrics["evenhand_llm_request_seconds"] == ("Histogram", {"model", "outcome"})
    assert metrics["evenhand_queue_depth"] == ("GaugeMetricFamily", {"queue"})
    assert metrics["evenhand_job_cache_lookups"] == ("Counter", {"result"})
    assert metrics["evenhand_job_watch_waiting"] == ("Gauge", set())
    assert all(name.startswith("evenhand_") for name in metrics)


def test_dashboard_is_importable() -> None:
    assert DASHBOARD["uid"] == "evenhand-overview"
    assert DASHBOARD["title"] == "evenhand"
    assert DASHBOARD["refresh"] == "30s"
    assert DASHBOARD["time"] == {"from": "now-6h", "to": "now"}
    assert DASHBOARD["schemaVersion"] >= 36
    inputs = DASHBOARD["__inputs"]
    assert [(i["name"], i["type"], i["pluginId"]) for i in inputs] == [
        ("DS_PROMETHEUS", "datasource", "prometheus")
    ]
    (variable,) = [v for v in DASHBOARD["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    assert variable["current"]["value"] == "${DS_PROMETHEUS}"
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    titles = [panel["title"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids)) and len(titles) == len(set(titles)) and len(ids) >= 8
    for panel in DASHBOARD["panels"]:
        assert panel["type"] in {"timeseries", "stat", "bargauge"}, panel["title"]
        assert panel["title"].strip() and panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert panel["targets"], panel["title"]
        for holder in [panel, *panel["targets"]]:
            assert holder["datasource"] == {"type": "prometheus", "uid": f"${{{variable['name']}}}"}


def problems(expr: str, names: dict[str, set[str]]) -> list[str]:
    """What in one PromQL expression names a metric or label evenhand does not export."""
    found = []
    used = re.findall(METRIC, expr)
    if not used:
        found.append("no evenhand metric")
    for name in used:
        if name not in names:
            found.append(f"unknown metric {name}")
    # job and instance are the labels Prometheus attaches to every scraped sample
    known = set().union(*(names.get(n, set()) for n in used)) | {"job", "instance"}
    for _name, selector in re.findall(METRIC + r"\{([^}]*)\}", expr):
        found += [
            f"unknown label {label}"
            for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector)
            if label not in known
        ]
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        found += [
            f"unknown label {label.strip()}"
            for label in group.split(",")
            if label.strip() not in known
        ]
    return found


def test_every_query_uses_metrics_and_labels_that_exist() -> None:
    names = exported()
    for panel in DASHBOARD["panels"]:
        for target in panel["targets"]:
            assert problems(target["expr"], names) == [], (panel["title"], target["expr"])


def test_every_metric_evenhand_exports_is_on_the_dashboard() -> None:
    exprs = " ".join(t["expr"] for panel in DASHBOARD["panels"] for t in panel["targets"])
    strip = re.compile(r"_(bucket|count|sum)$")
    shown = {strip.sub("", name) for name in re.findall(METRIC, exprs)}
    assert {strip.sub("", name) for name in exported()} <= shown


def test_the_check_catches_wrong_names() -> None:
    names = exported()
    assert problems('sum by (colour) (evenhand_jobs{status="queued"})', names) == [
        "unknown label colour"
    ]
    assert problems("rate(evenhand_llm_tokens[5m])", names) == [
        "unknown metric evenhand_llm_tokens"
    ]
    assert problems('rate(evenhand_llm_retries_total{model="x"}[5m])', names) == [
        "unknown label model"
    ]
