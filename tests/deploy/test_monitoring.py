"""The monitoring files of deploy/monitoring/: Prometheus alerting rules, the Grafana dashboard,
and metrics.txt, the metric families the daemon's /metrics exposes (a Rust test holds the
daemon to that list).

1. Every metric name in a rule's or a panel's expression (`cm_...`; a histogram's
   `_bucket`, `_sum` and `_count` series count as their family) is in metrics.txt, so that
   a renamed metric cannot leave an alert that never fires or a panel that stays empty.
   Every family of metrics.txt is on the dashboard.
2. alerts.yaml is a valid Prometheus rule file: the structure Prometheus's rulefmt accepts
   (groups with unique names; each rule an `alert` or a `record`, no unknown keys, label
   names valid, `for` a duration), and every expression parsed by promql-parser, a PromQL
   parser with Prometheus's grammar and type checks (PyPI `promql-parser`, bindings of the
   Rust crate of the same name). Go templates in annotations are only checked for balanced
   braces: promtool, which would check them, is not installable from PyPI.
3. Every alert has a `for`, a `severity` label (critical: page; warning: working hours),
   and `summary` and `description` annotations.
4. The dashboard is an export for import: schemaVersion 39 or later, one datasource input
   DS_PROMETHEUS used by every panel and query, unique panel ids, panels within the 24
   columns and not overlapping, and every query parses (Grafana's `$__range` and the like
   filled in).

Run from the repository root: `python -m pytest -q tests/deploy` (needs
tests/deploy/requirements.txt: PyYAML, promql-parser, pytest).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import promql_parser
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "deploy" / "monitoring"
METRICS = MONITORING / "metrics.txt"
ALERTS = MONITORING / "alerts.yaml"
DASHBOARD = MONITORING / "grafana-dashboard.json"

METRIC_TYPES = {"counter", "gauge", "histogram"}
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
CM_NAME = re.compile(r"\bcm_[a-z_]+")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
SEVERITIES = {"critical", "warning"}

# Prometheus's rulefmt: the keys a group and a rule may have.
GROUP_KEYS = {"name", "interval", "query_offset", "limit", "rules", "labels"}
RULE_KEYS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}

# Grafana's variables, filled in before a query is parsed.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1d"}


# ---------------------------------------------------------------------------------------
# metrics.txt


def metric_families() -> dict[str, str]:
    families = {}
    for n, line in enumerate(METRICS.read_text().splitlines(), 1):
        name, kind = line.split(" ")
        assert name not in families, f"metrics.txt:{n}: {name} twice"
        assert kind in METRIC_TYPES, f"metrics.txt:{n}: {kind} is not one of {sorted(METRIC_TYPES)}"
        assert METRIC_NAME.match(name), f"metrics.txt:{n}: {name} is not a metric name"
        families[name] = kind
    return families


def test_metrics_txt_is_sorted_name_and_type_per_line():
    lines = METRICS.read_text().splitlines()
    assert lines == sorted(lines), "metrics.txt: keep the lines sorted"
    families = metric_families()
    assert families, "metrics.txt is empty"
    for name, kind in families.items():
        assert name.endswith("_total") == (kind == "counter"), f"{name} {kind}: counters, and only counters, end in _total"


def family_of(series: str, families: dict[str, str]) -> str | None:
    """The family a series name belongs to: itself, or a histogram's for its _bucket/_sum/_count."""
    if series in families and families[series] != "histogram":
        return series
    for suffix in HISTOGRAM_SERIES:
        base = series[: -len(suffix)]
        if series.endswith(suffix) and families.get(base) == "histogram":
            return base
    return None


def unknown_names(text: str, families: dict[str, str]) -> list[str]:
    return sorted({n for n in CM_NAME.findall(text) if family_of(n, families) is None})


def test_family_of():
    families = {"a_total": "counter", "h_seconds": "histogram", "g": "gauge"}
    assert family_of("a_total", families) == "a_total"
    assert family_of("h_seconds_bucket", families) == "h_seconds"
    assert family_of("h_seconds_count", families) == "h_seconds"
    assert family_of("h_seconds", families) is None  # a histogram has no series of that name
    assert family_of("g_sum", families) is None
    assert unknown_names('rate(cm_x_total[5m]) / cm_g{le="1"}', {"cm_g": "gauge"}) == ["cm_x_total"]


# ---------------------------------------------------------------------------------------
# PromQL


def parse(expr: str) -> promql_parser.Expr:
    try:
        return promql_parser.parse(expr)
    except ValueError as e:
        raise AssertionError(f"PromQL does not parse: {e}\n  {expr}") from None


def selector_names(expr: promql_parser.Expr) -> set[str]:
    names = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector) and node.name is not None:
            names.add(node.name)

    promql_parser.walk(expr, pre_visit=visit)
    return names


def check_expr(expr: str, families: dict[str, str]) -> None:
    tree = parse(expr)
    assert not isinstance(tree, (promql_parser.MatrixSelector, promql_parser.StringLiteral)), (
        f"a range vector or a string cannot be alerted on or graphed: {expr}"
    )
    names = selector_names(tree)
    unknown = unknown_names(expr, families) + sorted(n for n in names if family_of(n, families) is None)
    assert not unknown, f"not in metrics.txt: {sorted(set(unknown))}\n  {expr}"


# ---------------------------------------------------------------------------------------
# alerts.yaml


def rule_file() -> dict:
    return yaml.safe_load(ALERTS.read_text())


def rules() -> list[dict]:
    return [r for g in rule_file()["groups"] for r in g["rules"]]


def balanced_templates(text: str) -> bool:
    return text.count("{{") == text.count("}}") and all(
        "}}" in rest.split("{{")[0] for rest in text.split("{{")[1:]
    )


def rule_file_problems(doc) -> list[str]:
    """What Prometheus would refuse in a rule file (rulefmt), expressions included."""
    problems = []
    if not isinstance(doc, dict) or set(doc) != {"groups"} or not isinstance(doc["groups"], list):
        return ["the file must be a mapping with one key, groups, a list"]
    names = set()
    for g in doc["groups"]:
        name = g.get("name")
        if not name:
            problems.append("a group without a name")
        elif name in names:
            problems.append(f"group {name}: the name is used twice")
        names.add(name)
        problems += [f"group {name}: unknown key {k}" for k in set(g) - GROUP_KEYS]
        for key in ("interval", "query_offset"):
            if key in g and not is_duration(g[key]):
                problems.append(f"group {name}: {key} {g[key]!r} is not a duration")
        if not g.get("rules"):
            problems.append(f"group {name}: no rules")
        for r in g.get("rules") or []:
            what = r.get("alert") or r.get("record") or "?"
            where = f"group {name}, rule {what}"
            problems += [f"{where}: unknown key {k}" for k in set(r) - RULE_KEYS]
            if ("alert" in r) == ("record" in r):
                problems.append(f"{where}: exactly one of alert and record")
            if "record" in r:
                if not METRIC_NAME.match(str(r["record"])):
                    problems.append(f"{where}: record is not a metric name")
                for key in ("for", "keep_firing_for", "annotations"):
                    if key in r:
                        problems.append(f"{where}: a recording rule has no {key}")
            for key in ("for", "keep_firing_for"):
                if key in r and not is_duration(r[key]):
                    problems.append(f"{where}: {key} {r[key]!r} is not a duration")
            if not isinstance(r.get("expr"), str) or not r["expr"].strip():
                problems.append(f"{where}: no expr")
            else:
                try:
                    promql_parser.parse(r["expr"])
                except ValueError as e:
                    problems.append(f"{where}: expr: {e}")
            for key in ("labels", "annotations"):
                values = r.get(key) or {}
                if not isinstance(values, dict):
                    problems.append(f"{where}: {key} must be a mapping")
                    continue
                for k, v in values.items():
                    if not isinstance(k, str) or not LABEL_NAME.match(k):
                        problems.append(f"{where}: {key}: {k!r} is not a label name")
                    if not isinstance(v, str):
                        problems.append(f"{where}: {key}.{k} must be a string, not {type(v).__name__}")
                    elif not balanced_templates(v):
                        problems.append(f"{where}: {key}.{k}: unbalanced {{{{ }}}}")
    return problems


def is_duration(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        promql_parser.parse_duration(value)
    except ValueError:
        return False
    return True


def test_alerts_is_a_valid_prometheus_rule_file():
    problems = rule_file_problems(rule_file())
    assert not problems, "alerts.yaml:\n" + "\n".join(problems)


def test_the_rule_file_check_is_not_vacuous():
    bad = {
        "groups": [
            {"name": "g", "rules": [
                {"alert": "A", "expr": "rate(cm_runs_total)", "for": "5 minutes"},
                {"alert": "B", "record": "b", "expr": "up", "annotations": {"summary": 1}},
                {"alert": "C", "expr": "up", "labels": {"bad-name": "x"}, "annotations": {"summary": "{{ $value"}},
            ]},
            {"name": "g", "rules": [{"alert": "D", "expr": "up", "fire": "now"}]},
        ]
    }
    problems = "\n".join(rule_file_problems(bad))
    for expected in ("rule A: expr", "rule A: for", "exactly one of alert and record", "a recording rule has no annotations",
                     "must be a string", "'bad-name' is not a label name", "unbalanced", "the name is used twice",
                     "unknown key fire"):
        assert expected in problems, f"{expected!r} not reported:\n{problems}"


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r.get("alert") or r.get("record"))
def test_alert_uses_only_exposed_metrics(rule: dict):
    check_expr(rule["expr"], metric_families())


@pytest.mark.parametrize("rule", [r for r in rules() if "alert" in r], ids=lambda r: r["alert"])
def test_alert_tells_the_operator_what_to_do(rule: dict):
    assert "for" in rule, "every alert waits a while (`for`) before it fires"
    assert (rule.get("labels") or {}).get("severity") in SEVERITIES, f"severity must be one of {sorted(SEVERITIES)}"
    annotations = rule.get("annotations") or {}
    for key in ("summary", "description"):
        assert str(annotations.get(key) or "").strip(), f"no {key} annotation"


def test_alert_names_are_unique():
    names = [r["alert"] for r in rules() if "alert" in r]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_alerts_name_only_existing_cli_commands():
    """The commands the annotations tell operators to run are the CLI's (src/cli.rs)."""
    cli = (REPO / "src" / "cli.rs").read_text()
    subcommands = {m.lower() for m in re.findall(r"^\s{4}([A-Z][a-z]+)(?:\s*[({,]|$)", cli, re.M)}
    text = ALERTS.read_text()
    used = set(re.findall(r"`cm-baseline (?:--[a-z-]+ \S+ )*([a-z]+)", text))
    assert used, "the annotations name no cm-baseline command"
    assert used <= subcommands, f"not commands of src/cli.rs: {sorted(used - subcommands)}"
    runs = set(re.findall(r"`cm-baseline (?:--[a-z-]+ \S+ )*runs ([a-z]+)", text))
    assert runs <= {"list", "show", "approve"}, f"not subcommands of runs: {sorted(runs - {'list', 'show', 'approve'})}"


# ---------------------------------------------------------------------------------------
# grafana-dashboard.json


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def all_panels(panels: list[dict]) -> list[dict]:
    out = []
    for p in panels:
        out.append(p)
        out += all_panels(p.get("panels") or [])
    return out


def queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query, Grafana's variables filled in."""
    out = []
    for p in all_panels(dashboard()["panels"]):
        for t in p.get("targets") or []:
            expr = t["expr"]
            for var, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(var, value)
            out.append((p["title"], expr))
    return out


def test_dashboard_is_an_export_for_import():
    d = dashboard()
    assert d["schemaVersion"] >= 39
    inputs = {i["name"]: i for i in d.get("__inputs") or []}
    assert set(inputs) == {"DS_PROMETHEUS"}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource" and inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"
    want = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    ids = []
    for p in all_panels(d["panels"]):
        ids.append(p["id"])
        if p["type"] == "row":
            continue
        assert p.get("datasource") == want, f"panel {p['title']}: datasource {p.get('datasource')}"
        assert p.get("targets"), f"panel {p['title']} has no query"
        for t in p["targets"]:
            assert t.get("datasource") == want, f"panel {p['title']}, query {t.get('refId')}: datasource"
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for v in d["templating"]["list"]:
        if v["type"] == "query":
            assert v["datasource"] == want, f"variable {v['name']}: datasource"


def test_dashboard_panels_fit_and_do_not_overlap():
    taken = {}
    for p in all_panels(dashboard()["panels"]):
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, f"panel {p['title']} is outside the 24 columns"
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in taken, f"panels {taken[(x, y)]!r} and {p['title']!r} overlap"
                taken[(x, y)] = p["title"]


@pytest.mark.parametrize("title,expr", queries(), ids=[f"{t}:{i}" for i, (t, _) in enumerate(queries())])
def test_dashboard_query_parses_and_uses_only_exposed_metrics(title: str, expr: str):
    check_expr(expr, metric_families())


def test_dashboard_variables_use_only_exposed_metrics():
    families = metric_families()
    for v in dashboard()["templating"]["list"]:
        text = json.dumps(v.get("query")) + json.dumps(v.get("definition"))
        assert not unknown_names(text, families), f"variable {v['name']}: {unknown_names(text, families)}"


def test_every_exposed_family_is_on_the_dashboard():
    families = metric_families()
    shown = {family_of(n, families) for _, expr in queries() for n in CM_NAME.findall(expr)}
    missing = sorted(set(families) - shown)
    assert not missing, f"metrics.txt families no panel shows: {missing}"
