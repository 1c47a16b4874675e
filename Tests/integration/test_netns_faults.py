"""Faults between hosts (issue 12, point 3): the broker, each worker, the aggregator and the
client (producers, score reader) on network namespaces of their own (netns.py), and one host cut
off at a time by taking its link down: a worker for 30 s during pass 1 and during pass 2, the
aggregator for 30 s, the broker from everyone for 20 s. After each: every run's final score equals
the float64 NumPy reference to 1e-9 relative, no run is left hanging (final within 180 s of the
link coming back), every role is still running and the cut-off role has rejoined its group; the
time from the restore to the last final score goes to .deps/test-results/scenarios.txt.

The cut is timed by facts, not sleeps: "in pass 1" is the first progress record on the score
topic, and each run's second shard is published only after the cut, so pass 1 cannot end before
it; "in pass 2" is the moment the aggregator logs "pass 2 issued" for the last run. Pass 2 lasts long enough to be cut
into because runs have 2000 target classes with EEP accuracy (2000 dot products a row) and the
workers keep no chunk cache (pass 2 reads every chunk from the broker, across the network).

Runs only as root where `ip netns` works; skipped with the reason otherwise.
Run just these (about 4 minutes; one at a time, the namespaces' names are fixed):
`LEEP_BIN=$PWD/.build/release/leep .deps/venv/bin/python -m pytest -q -rs Tests/integration/test_netns_faults.py`."""

from __future__ import annotations

import datetime
import json
import re
import sys
import time

import numpy as np
import pytest

import netns
from cluster import ROOT, make_run, wait_for
from test_faults import check_exact, finish, produce

sys.path.insert(0, str(ROOT / "Tests" / "reference"))
from leep_reference import leep_scores  # noqa: E402

RUNS = {
    "a": dict(rows=40_000, source=100, target=2000, dtype=np.float32, seed=31),
    "b": dict(rows=30_000, source=100, target=2000, dtype=np.float32, seed=32),
    "c": dict(rows=20_000, source=100, target=2000, dtype=np.float64, seed=33),
}
CHUNK_ROWS = 200
HOSTS = {"broker": 2, "w0": 10, "w1": 11, "agg": 20, "client": 30}
PLACEMENT = {"worker0": "w0", "worker1": "w1", "aggregator0": "agg", "scores": "client"}
ROLE_ON = {"w0": "worker0", "w1": "worker1", "agg": "aggregator0"}
# A run that is not final this long after the link came back counts as hung.
DEADLINE = 180


@pytest.fixture(scope="module")
def network_available():
    reason = netns.available()
    if reason:
        pytest.skip(f"network-namespace fault harness not run: {reason}")


@pytest.fixture(scope="module")
def data(tmp_path_factory, network_available):
    """Each run as two shards (rows split in half) plus the reference on all its rows."""
    directory = tmp_path_factory.mktemp("netns-data")
    runs = {}
    for name, spec in RUNS.items():
        (predictions, labels), shards = make_run(directory, name, shards=2, **spec)
        runs[name] = (predictions, labels, leep_scores(np.load(predictions), np.load(labels)), shards)
    return runs


@pytest.fixture
def hosts(tmp_path, network_available):
    """A network of hosts with a broker on its own host; everything removed afterwards."""
    network = netns.Network(HOSTS)
    network.up()
    cluster = netns.NetnsCluster(tmp_path, network, PLACEMENT)
    try:
        cluster.broker("start")
        yield cluster
    finally:
        try:
            cluster.stop_all()
            cluster.broker("stop")
        finally:
            network.down()
    assert not netns.namespaces(), "namespaces left behind"


class Scores:
    """The records `leep scores --follow --json` has printed so far (its log, read as it grows)."""

    def __init__(self, cluster):
        self.path = cluster.logs["scores"]
        self.read = 0
        self.records: list[dict] = []

    def poll(self) -> list[dict]:
        with self.path.open("rb") as file:
            file.seek(self.read)
            data = file.read()
        complete = data[:data.rfind(b"\n") + 1]
        self.read += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            if line.startswith("{"):
                self.records.append(json.loads(line))
        return self.records

    def latest(self) -> dict[str, dict]:
        return {record["run"]: record for record in self.poll()}


def log_events(cluster, name: str, message: str) -> list[tuple[float, str]]:
    """(time, line) of every line of `name`'s log with msg="message"; time is the line's ts."""
    events = []
    for line in cluster.logs[name].read_text(errors="replace").splitlines():
        if f'msg="{message}"' in line:
            stamp = re.match(r"ts=(\S+)", line)
            if stamp:
                events.append((datetime.datetime.fromisoformat(stamp.group(1).replace("Z", "+00:00")).timestamp(), line))
    return events


def run_of(line: str) -> str:
    return re.search(r"\brun=(\S+)", line).group(1)


def first_final(cluster) -> dict[str, float]:
    """Run → when the aggregator first closed it as final (its log's clock: this machine's)."""
    closed = {}
    for at, line in log_events(cluster, "aggregator0", "run closed"):
        if "status=final" in line:
            closed.setdefault(run_of(line), at)
    return closed


def wait(predicate, timeout: float, interval: float, what: str, cluster):
    return wait_for(predicate, timeout, interval, what, diagnosis=lambda: diagnosis(cluster))


def diagnosis(cluster) -> str:
    states = []
    for name, process in cluster.processes.items():
        code = process.poll()
        states.append(f"{name}: {'running' if code is None else f'exited with {code}'}")
    return "; ".join(states) + "\n" + cluster.log_tails(25)


def start_roles(cluster) -> Scores:
    for index in range(2):
        cluster.start(f"worker{index}", "worker", "--flush-interval", "1", "--chunk-cache-mb", "0")
    cluster.start("aggregator0", "aggregate", "--repair-after", "5")
    cluster.start("scores", "scores", "--follow", "--json")
    for index in range(2):
        wait(lambda: log_events(cluster, f"worker{index}", "partitions assigned"), 60, 0.1,
             f"worker{index} to join its group", cluster)
    wait(lambda: log_events(cluster, "aggregator0", "runs partition caught up"), 60, 0.1,
         "the aggregator to own the runs partitions", cluster)
    return Scores(cluster)


def publish(cluster, data, shard: int):
    # Producers are started while a host may be cut off (the broker for 20 s): they wait for it
    # longer than leep produce's default 30 s, which a reconnection after a 20 s cut can exceed.
    return [produce(cluster, name, (*files[3][shard], None), "--shard", str(shard), "--shards", "2",
                    "--broker-wait", "120", chunk_rows=CHUNK_ROWS) for name, files in data.items()]


def cut_off(cluster, data, report, host: str, seconds: float, during: str, scenario: str):
    """Runs the scenario; reports its result line, or the exactness line (if it got that far)
    and a FAILED line with the first line of the reason."""
    exact: list[str] = []  # check_exact's line, reported with what follows
    try:
        line = _cut_off(cluster, data, host, seconds, during, scenario, exact)
    except BaseException as error:
        if exact:
            report(exact[0])
        report(f"[{scenario}] FAILED: {str(error).splitlines()[0] if str(error) else type(error).__name__}")
        raise
    report(line)


def _cut_off(cluster, data, host, seconds, during, scenario, exact) -> str:
    network = cluster.network
    scores = start_roles(cluster)
    producers = publish(cluster, data, 0)
    if during == "pass 1":
        # The first progress record: the aggregator has a run open in pass 1 while the first shards
        # are still being published, and the second shards are not out yet, so pass 1 cannot end
        # before the cut.
        wait(lambda: any(r["status"] in ("progress", "streaming") and r.get("pass") == 1 for r in scores.poll()), 60, 0.05,
             "a run's first progress record", cluster)
        state = {run: r.get("chunks_accepted", 0) for run, r in scores.latest().items()}
        cut_mono, cut_wall = network.cut(host), time.time()
        producers += publish(cluster, data, 1)  # while the host is cut off
        where = "pass 1 (chunks accepted: " + ", ".join(f"{run} {n}" for run, n in sorted(state.items())) + ")"
    else:
        for producer in producers:
            finish(producer)
        for producer in publish(cluster, data, 1):
            finish(producer)
        producers = []
        # The moment the last run's pass-2 tasks are issued: all of them are still to do.
        issued = wait(lambda: (lambda events: events if len({run_of(line) for _, line in events}) == len(data) else None)(
            log_events(cluster, "aggregator0", "pass 2 issued")), 120, 0.01, "every run's pass 2 to be issued", cluster)
        cut_mono, cut_wall = network.cut(host), time.time()
        closed = len(first_final(cluster))
        where = f"pass 2 ({cut_wall - issued[-1][0]:.2f} s after the last run's pass 2 was issued; {closed} of {len(data)} runs final)"
    print(f"{scenario}: {host} cut off in {where}")
    time.sleep(max(0.0, cut_mono + seconds - time.monotonic()))
    restore_mono, restore_wall = network.restore(host), time.time()
    print(f"{scenario}: {host} restored after {restore_mono - cut_mono:.1f} s")

    finals = wait(lambda: (lambda f: f if len(f) == len(data) else None)(first_final(cluster)),
                  DEADLINE, 0.2, f"every run final within {DEADLINE} s of the restore", cluster)
    for producer in producers:
        finish(producer, timeout=max(10, DEADLINE - (time.monotonic() - restore_mono)))
    last = max(finals.values())
    issued = [at for at, _ in log_events(cluster, "aggregator0", "pass 2 issued")]
    if during == "pass 1":
        assert min(issued) > cut_wall, "the cut was meant to land in pass 1, but pass 2 had begun"
    else:
        assert last > cut_wall, f"the cut was meant to land in pass 2, but every run was final before it: {where}"
    if last >= restore_wall:
        timing = f"all final {last - restore_wall:.1f} s after the link came back"
    else:
        timing = f"all final during the cut, {last - cut_wall:.1f} s after it began"
    check_exact(cluster, {name: files[:3] for name, files in data.items()}, scenario, exact.append,
                detail=f"{timing}; cut in {where}")

    # Correct behaviour beyond the scores: nothing exited, and the cut-off role is back in its group.
    for name, process in cluster.processes.items():
        assert process.poll() is None, f"{name} exited with {process.returncode}\n{diagnosis(cluster)}"
    role = ROLE_ON.get(host)
    if role:
        joined = "runs partitions assigned" if role.startswith("aggregator") else "partitions assigned"
        remaining = max(10, DEADLINE - (time.monotonic() - restore_mono))
        back = wait(lambda: [at for at, _ in log_events(cluster, role, joined) if at > restore_wall], remaining, 0.2,
                    f"{role} to rejoin its group after the restore", cluster)
        exact[0] += f"; {role} had partitions again {back[0] - restore_wall:.1f} s after the restore"
    return exact[0] + "; no role exited"


def test_worker_cut_off_for_30_s_in_pass_1(hosts, data, report):
    cut_off(hosts, data, report, "w0", 30, "pass 1", "netns: worker cut off 30 s in pass 1")


def test_worker_cut_off_for_30_s_in_pass_2(hosts, data, report):
    cut_off(hosts, data, report, "w0", 30, "pass 2", "netns: worker cut off 30 s in pass 2")


def test_aggregator_cut_off_for_30_s(hosts, data, report):
    cut_off(hosts, data, report, "agg", 30, "pass 1", "netns: aggregator cut off 30 s in pass 1")


def test_broker_cut_off_from_everyone_for_20_s(hosts, data, report):
    cut_off(hosts, data, report, "broker", 20, "pass 1", "netns: broker cut off from everyone 20 s in pass 1")
