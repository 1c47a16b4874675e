"""Scores the study's prediction files with the leepstream pipeline, not with Python.

A local broker (ops/broker, on a port of the study's own), two `leep worker`s and one
`leep aggregate` run while `leep produce` publishes every (source, target) pair, a few at a
time, each with its predictions, labels and features; `leep scores --json` then reads the final
records back from the score topic. Every process started here is stopped here, also on errors.
A handful of pairs are cross-checked against `leep score` (the same numerics, offline) as a
sanity check.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

PRODUCERS_AT_ONCE = 8
SCORES_TIMEOUT_SECONDS = 300
CROSS_CHECKS = 6
# What the cross-check compares: the scores (to 1e-9 relative), then the counts (exactly).
CHECKED_SCORES = ("leep", "nce", "eep_accuracy", "logme", "hscore", "hscore_shrinkage", "ledoit_wolf_shrinkage")
CHECKED_COUNTS = ("n", "source_classes", "target_classes", "feature_width")


@dataclass(frozen=True)
class Pair:
    """One run to score: the source model's name, the target's name and their files (softmax
    outputs, labels, and the source's penultimate-layer features on the same rows)."""

    model: str
    dataset: str
    predictions: pathlib.Path
    labels: pathlib.Path
    features: pathlib.Path

    def files(self) -> list[str]:
        """The file options `leep produce` and `leep score` share."""
        return ["--predictions", str(self.predictions), "--labels", str(self.labels),
                "--features", str(self.features), "--eep-accuracy"]


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} exited {result.returncode}:\n"
                           f"{result.stdout}{result.stderr}")
    return result


def score_pairs(pairs: list[Pair], *, leep: pathlib.Path, root: pathlib.Path,
                logs: pathlib.Path, port: int) -> dict[tuple[str, str], dict]:
    """Publishes every pair to a local broker and returns the final score record of each,
    keyed by (model, dataset)."""
    prefix = f"study-{int(time.time())}."
    brokers = f"127.0.0.1:{port}"
    env = dict(os.environ, LEEP_BROKER_PORT=str(port), LEEP_TOPIC_PREFIX=prefix)
    broker = [str(root / "ops" / "broker")]
    logs.mkdir(parents=True, exist_ok=True)
    common = ["--brokers", brokers, "--topic-prefix", prefix]
    started_broker = subprocess.run(broker + ["status"], env=env, capture_output=True).returncode != 0
    services: list[subprocess.Popen] = []
    try:
        _run(broker + ["start"], env=env)
        for role, log in (("worker", "worker1"), ("worker", "worker2"), ("aggregate", "aggregator")):
            with open(logs / f"{log}.log", "w") as out:
                services.append(subprocess.Popen(
                    [str(leep), role, *common, "--kafka-config", "session.timeout.ms=6000"],
                    stdout=out, stderr=subprocess.STDOUT))

        def produce(pair: Pair) -> None:
            _run([str(leep), "produce", "--model", pair.model, "--dataset", pair.dataset,
                  *pair.files(), *common])

        started = time.monotonic()
        with ThreadPoolExecutor(PRODUCERS_AT_ONCE) as pool:
            list(pool.map(produce, pairs))
        print(f"  produced {len(pairs)} runs to {brokers} (topics {prefix}*) in "
              f"{time.monotonic() - started:.0f} s; waiting for their scores", flush=True)
        for service in services:
            if service.poll() is not None:
                raise RuntimeError(f"{service.args[1]} exited {service.returncode}: see {logs}")
        result = subprocess.run([str(leep), "scores", "--wait-count", str(len(pairs)), "--timeout",
                                 str(SCORES_TIMEOUT_SECONDS), "--json", *common],
                                capture_output=True, text=True)
        records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        if result.returncode != 0:
            unfinished = [r for r in records if r.get("status") != "final"]
            raise RuntimeError(f"leep scores exited {result.returncode}: {result.stderr.strip()}\n"
                               f"runs not final: {unfinished[:10]}")
        print(f"  {len(records)} final scores read back from {prefix}scores after "
              f"{time.monotonic() - started:.0f} s", flush=True)
    finally:
        for service in services:
            if service.poll() is None:
                service.send_signal(signal.SIGTERM)
        for service in services:
            try:
                service.wait(timeout=15)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait()
        if started_broker:
            subprocess.run(broker + ["stop"], env=env, capture_output=True)
    return _check(pairs, records)


def _check(pairs: list[Pair], records: list[dict]) -> dict[tuple[str, str], dict]:
    """Exactly one final record per pair, nothing else."""
    scores: dict[tuple[str, str], dict] = {}
    for record in records:
        key = (record["model"], record["dataset"])
        if record["status"] != "final" or key in scores:
            raise RuntimeError(f"unexpected score record: {record}")
        scores[key] = record
    expected = {(p.model, p.dataset) for p in pairs}
    if set(scores) != expected:
        raise RuntimeError(f"scores for {sorted(set(scores) ^ expected)[:10]} missing or unexpected")
    return scores


def cross_check(pairs: list[Pair], scores: dict[tuple[str, str], dict], leep: pathlib.Path) -> float:
    """Asserts that a few pipeline records equal `leep score --features … --json` on the same
    files: every score (LEEP, NCE, EEP accuracy, LogME, both H-scores, the Ledoit–Wolf α) to 1e-9
    relative, the counts and the feature width exactly. Returns the largest relative difference."""
    step = max(1, len(pairs) // CROSS_CHECKS)
    largest = 0.0
    for pair in pairs[::step][:CROSS_CHECKS]:
        offline = json.loads(_run([str(leep), "score", *pair.files(), "--json"]).stdout)
        streamed = scores[(pair.model, pair.dataset)]
        for key in CHECKED_SCORES:
            if key not in streamed or key not in offline:
                raise RuntimeError(f"{pair.model} on {pair.dataset}: {key} missing from the "
                                   f"{'pipeline record' if key not in streamed else 'leep score output'}")
            if not math.isclose(streamed[key], offline[key], rel_tol=1e-9, abs_tol=1e-12):
                raise RuntimeError(f"{pair.model} on {pair.dataset}: pipeline {key} {streamed[key]} "
                                   f"but leep score {offline[key]}")
            if offline[key] != 0:
                largest = max(largest, abs(streamed[key] - offline[key]) / abs(offline[key]))
        for key in CHECKED_COUNTS:
            if streamed.get(key) != offline.get(key):
                raise RuntimeError(f"{pair.model} on {pair.dataset}: {key} differs "
                                   f"({streamed.get(key)} against {offline.get(key)})")
    print(f"  cross-check: {min(CROSS_CHECKS, len(pairs))} pipeline records equal `leep score` "
          f"({', '.join(CHECKED_SCORES)} to 1e-9; largest relative difference {largest:.1e})", flush=True)
    return largest
