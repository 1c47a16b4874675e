"""Helpers for the integration tests: a real broker (Tansu, started by ops/broker) and real
`leep` processes, on a port and topic prefix of their own."""

from __future__ import annotations

import contextlib
import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def leep_binary() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("LEEP_BIN", ROOT / ".build/release/leep"))
    if not path.is_absolute():
        path = ROOT / path
    if not path.exists():
        pytest.fail(f"leep binary not found at {path}; build it with `swift build -c release` (ops/test does)")
    return path


class Cluster:
    """A broker plus leep worker and aggregator processes that share one topic prefix."""

    def __init__(self, tmp: pathlib.Path, port: int, host: str = "127.0.0.1"):
        self.tmp = tmp
        self.port = port
        self.host = host
        self.prefix = f"it{uuid.uuid4().hex[:8]}."
        self.leep = leep_binary()
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, pathlib.Path] = {}
        self.env = dict(os.environ, LEEP_BROKER_PORT=str(port), LEEP_BROKER_HOST=host, LEEP_TOPIC_PREFIX=self.prefix)

    def command_prefix(self, name: str | None) -> list[str]:
        """What runs a command: nothing here, `ip netns exec NS` in the network-namespace harness
        (netns.py), where every process has a host of its own. `name` is the process's name in
        `processes`, "broker" for ops/broker, None for one-off commands (leep_run, kafka_run)."""
        return []

    @property
    def common(self) -> list[str]:
        # Short session timeouts: a group forms and fails over in seconds, as the notes advise.
        return ["--brokers", f"{self.host}:{self.port}", "--topic-prefix", self.prefix,
                "--kafka-config", "session.timeout.ms=6000"]

    def broker(self, action: str) -> None:
        subprocess.run([*self.command_prefix("broker"), str(ROOT / "ops/broker"), action], check=True, env=self.env,
                       stdout=subprocess.DEVNULL, stderr=sys.stderr)

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = self.tmp / f"{name}.log"
        self.logs[name] = log
        process = subprocess.Popen([*self.command_prefix(name), str(self.leep), *args, *self.common], stdout=log.open("w"),
                                   stderr=subprocess.STDOUT, env=self.env)
        self.processes[name] = process
        return process

    def leep_run(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self.command_prefix(None), str(self.leep), *args], capture_output=True, text=True, timeout=timeout,
                              check=check, env=self.env)

    def kafka_run(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        return self.leep_run(*args, *self.common, timeout=timeout, check=check)

    def stop(self, name: str, sig: int = signal.SIGTERM, wait: float = 30) -> int | None:
        process = self.processes.pop(name)
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(wait)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def log_tails(self, lines: int = 15) -> str:
        parts = []
        for name, path in self.logs.items():
            text = path.read_text(errors="replace").splitlines() if path.exists() else []
            parts.append(f"--- {name} ---\n" + "\n".join(text[-lines:]))
        return "\n".join(parts)


def make_run(directory: pathlib.Path, name: str, *, rows: int, source: int, target: int, dtype, seed: int,
             empty_columns: int = 0, shards: int = 1, label_cap_per_shard: list[int] | None = None):
    """Writes a run's full files and its shard files; returns their paths.

    Rows are softmax outputs whose argmax predicts the label most of the time, so the scores are
    far from trivial; `empty_columns` source classes never receive mass."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    labels = rng.integers(0, target, size=rows)
    if label_cap_per_shard:
        bounds = np.linspace(0, rows, shards + 1).astype(int)
        for shard, cap in enumerate(label_cap_per_shard):
            labels[bounds[shard]:bounds[shard + 1]] %= cap
    logits = rng.normal(size=(rows, source)).astype(np.float64)
    favourite = (labels * 7919) % max(1, source - empty_columns)
    logits[np.arange(rows), favourite] += 2.5
    if empty_columns:
        logits[:, source - empty_columns:] = -np.inf
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    theta = (weights / weights.sum(axis=1, keepdims=True)).astype(dtype)
    full = (directory / f"{name}.predictions.npy", directory / f"{name}.labels.npy")
    np.save(full[0], theta)
    np.save(full[1], labels.astype(np.int64))
    bounds = np.linspace(0, rows, shards + 1).astype(int)
    shard_files = []
    for shard in range(shards):
        paths = (directory / f"{name}.{shard}.predictions.npy", directory / f"{name}.{shard}.labels.npy")
        np.save(paths[0], theta[bounds[shard]:bounds[shard + 1]])
        np.save(paths[1], labels[bounds[shard]:bounds[shard + 1]].astype(np.int64))
        shard_files.append(paths)
    return full, shard_files


def assert_matches_leep_score(cluster: Cluster, name: str, record: dict, predictions, labels) -> None:
    """A final score record equals `leep score` on the same files: floats (LEEP, its bracket,
    NCE) to 1e-9 relative, counts exactly. EEP accuracy is compared when the record has it (the
    run asked for it)."""
    assert record["status"] == "final", record
    accuracy = "eep_accuracy" in record
    expected = json.loads(cluster.leep_run(
        "score", "--predictions", str(predictions), "--labels", str(labels), "--json",
        *(["--eep-accuracy"] if accuracy else [])).stdout)
    for key in ("leep", "leep_lower", "leep_upper", "nce") + (("eep_accuracy",) if accuracy else ()):
        assert math.isclose(record[key], expected[key], rel_tol=1e-9, abs_tol=1e-12), \
            (name, key, record[key], expected[key])
    for key in ("n", "source_classes", "target_classes"):
        assert record[key] == expected[key], (name, key, record[key], expected[key])


def wait_for(predicate, timeout: float, interval: float = 0.5, what: str = "condition", diagnosis=None):
    """The first true value of `predicate`, polled every `interval` s; after `timeout` s an
    AssertionError naming `what`, followed by `diagnosis()` when given (read only then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    detail = f"\n{diagnosis()}" if diagnosis else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{detail}")


@contextlib.contextmanager
def own_broker(tmp: pathlib.Path, port: int, env: dict[str, str] | None = None):
    """A cluster with a broker of its own on `port` (started with `env` added to its
    environment), which a test may freeze, restart or stop; everything is stopped at the end."""
    cluster = Cluster(tmp, port)
    cluster.env.update(env or {})
    cluster.broker("start")
    try:
        yield cluster
    finally:
        cluster.stop_all()
        cluster.broker("stop")
