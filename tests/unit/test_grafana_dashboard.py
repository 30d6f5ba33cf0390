"""docs/grafana-dashboard.json is importable and asks only for metrics and labels that exist."""

import json
import re
from pathlib import Path

from prometheus_client import Counter, Histogram

from kernel import metrics

DASHBOARD = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json").read_text()
)
METRIC = r"\b((?:evenhand|process)_\w+)"


def exported() -> dict[str, set[str]]:
    """Sample names evenhand exposes, with their labels (plus the standard process metrics)."""
    names: dict[str, set[str]] = {"process_resident_memory_bytes": set()}
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            names[value._name + "_total"] = set(value._labelnames)
        elif isinstance(value, Histogram):
            for suffix in ("_bucket", "_count", "_sum"):
                names[value._name + suffix] = set(value._labelnames) | (
                    {"le"} if suffix == "_bucket" else set()
                )
    # the API's scrape-time gauges; describe() yields the families without touching a database
    for family in metrics.JobsCollector("queue").describe():
        names[family.name] = set(family._labelnames)
    return names


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
