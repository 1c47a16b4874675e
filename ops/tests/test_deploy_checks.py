"""ops/lib/deploy_checks.py on small inputs: what each check accepts, and the line it prints for
what it refuses. The whole validator runs in the test command (ops/validate-deploy, with its
negative self-checks); these pin its Python half down piece by piece."""

import json
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
import deploy_checks  # noqa: E402

METRICS = """\
# name type roles labels always
leep_worker_chunks_total counter worker role yes
leep_runs_open gauge aggregator role,run no
"""


@pytest.fixture
def metrics(tmp_path):
    path = tmp_path / "metrics.txt"
    path.write_text(METRICS)
    return path


def run(capsys, command, *args):
    """Runs one command; returns (exit status, what it printed)."""
    try:
        getattr(deploy_checks, "cmd_" + command)(*map(str, args))
        status = 0
    except SystemExit as exit:
        status = exit.code
    return status, capsys.readouterr().out


def test_the_metrics_list_is_read_with_its_columns(metrics):
    listed = deploy_checks.load_metrics(metrics)
    assert listed["leep_worker_chunks_total"] == ("counter", {"worker"}, True, {"role"})
    assert listed["leep_runs_open"] == ("gauge", {"aggregator"}, False, {"role", "run"})


@pytest.mark.parametrize("line, problem", [
    ("leep_x counter worker - yes", "counter leep_x should end in _total"),
    ("leep_x_total counter workers - yes", "roles must be worker and/or aggregator, got workers"),
    ("leep_x gauge worker - maybe", "last column must be yes or no"),
    ("leep_x gauge worker -", "want 5 columns"),
    ("9leep gauge worker - no", "9leep is not a metric name"),
    ("leep_worker_chunks_total counter worker role yes", "leep_worker_chunks_total listed twice"),
])
def test_a_bad_line_of_the_metrics_list_is_named(tmp_path, capsys, line, problem):
    path = tmp_path / "metrics.txt"
    path.write_text(METRICS + line + "\n")
    status, out = run(capsys, "metrics", path)
    assert status == 1
    assert f"{path}:4: " in out and problem in out


def test_metric_names_outside_the_list_are_reported(tmp_path, capsys, metrics):
    alerts = tmp_path / "alerts.yml"
    alerts.write_text("expr: rate(leep_worker_chunks_total[5m]) > 0 and leep_missing_total > 1\n")
    status, out = run(capsys, "names", alerts, metrics)
    assert status == 1 and out.strip() == f"{alerts}: metric leep_missing_total is not in {metrics}"
    assert deploy_checks.unknown_names("xleep_a leep_runs_open", deploy_checks.load_metrics(metrics)) == []


def test_a_scrape_is_held_to_the_list_its_role_labels_and_its_always_metrics(tmp_path, capsys, metrics):
    good = tmp_path / "good.txt"
    good.write_text('# HELP x\nleep_worker_chunks_total{role="worker"} 3\nprocess_cpu_seconds_total 1\n')
    assert run(capsys, "scrape", good, "worker", metrics) == (0, "1 leep metrics\n")
    bad = tmp_path / "bad.txt"
    bad.write_text('leep_worker_chunks_total{role="aggregator",run="r"} 3\nleep_other 1\n')
    status, out = run(capsys, "scrape", bad, "worker", metrics)
    assert status == 1
    assert "leep_worker_chunks_total has labels ['role', 'run'], " in out
    assert 'leep_worker_chunks_total has role="aggregator" in a worker scrape' in out
    assert f"{bad}:2: leep_other is not in {metrics}" in out
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    status, out = run(capsys, "scrape", empty, "worker", metrics)
    assert status == 1 and "leep_worker_chunks_total is missing (every worker scrape should have it)" in out


def test_the_broken_copies_are_broken_as_the_negative_checks_need(tmp_path):
    dashboard = tmp_path / "dashboard.json"
    dashboard.write_text(json.dumps({"panels": [{"targets": [{"expr": "sum(leep_runs_open)"}]}]}))
    syntax, unknown = tmp_path / "syntax.json", tmp_path / "unknown.json"
    deploy_checks.cmd_break_dashboard(str(dashboard), str(syntax), str(unknown))
    assert json.loads(syntax.read_text())["panels"][0]["targets"][0]["expr"] == "sum(leep_runs_open))"
    assert json.loads(unknown.read_text())["panels"][0]["targets"][0]["expr"] == "sum(leep_unknown_runs_open)"
    services = tmp_path / "services.yaml"
    services.write_text("kind: Service\nspec:\n  selector:\n    app.kubernetes.io/component: worker\n")
    deploy_checks.cmd_break_service_selector(str(services))
    assert "app.kubernetes.io/component: workers" in services.read_text()
