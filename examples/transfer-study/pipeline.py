"""Scores the study's prediction files with the leepstream pipeline, not with Python.

A local broker (ops/broker, on a port of the study's own), two `leep worker`s and one
`leep aggregate` run while `leep produce` publishes every (source, target) pair, a few at a
time, each with its predictions, labels and features; `leep scores --json` then reads the final
records back from the score topic. Every process started here is stopped here, also on errors.
A handful of pairs are cross-checked against `leep score` (the same numerics, offline) as a
sanity check.

Each pair is also published a second time as a run of features alone (`leep produce --features
F --labels L`, no --predictions), as an encoder without a classifier head would be, under the
model name FEATURES_ONLY_PREFIX + source. `features_only_check` asserts that those runs' records
carry the same feature scores as the runs with softmax outputs (the same rows), and no LEEP,
NCE, EEP accuracy or source class count.
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
# A feature metric undefined for a run's data is null, with its reason under "unscored"; the
# check then asks both sides for null and for the same reason.
FEATURE_SCORES = ("logme", "hscore", "hscore_shrinkage", "ledoit_wolf_shrinkage", "gbc_diagonal",
                  "gbc_spherical", "transrate", "sfda", "sfda_shrinkage")
SOFTMAX_SCORES = ("leep", "nce", "eep_accuracy")
CHECKED_SCORES = (*SOFTMAX_SCORES, *FEATURE_SCORES)
CHECKED_COUNTS = ("n", "source_classes", "target_classes", "feature_width")
# Runs of features alone are published under this prefix of the source's name.
FEATURES_ONLY_PREFIX = "features-only:"


@dataclass(frozen=True)
class Pair:
    """One run to score: the source model's name, the target's name and their files (softmax
    outputs, labels, and the source's penultimate-layer features on the same rows)."""

    model: str
    dataset: str
    predictions: pathlib.Path | None  # None: a run of features alone (no classifier head)
    labels: pathlib.Path
    features: pathlib.Path

    def files(self) -> list[str]:
        """The file options `leep produce` and `leep score` share."""
        if self.predictions is None:
            return ["--labels", str(self.labels), "--features", str(self.features)]
        return ["--predictions", str(self.predictions), "--labels", str(self.labels),
                "--features", str(self.features), "--eep-accuracy"]

    def features_only(self) -> Pair:
        """The same source's features on the same rows, published as an encoder without a head."""
        return Pair(FEATURES_ONLY_PREFIX + self.model, self.dataset, None, self.labels, self.features)


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


def _same(a, b) -> bool:
    """Two values of a score: both null, or equal to 1e-9 relative (no absolute tolerance: a GBC
    of well separated classes is a sum of terms like 1e-30, and an absolute tolerance would
    accept any value of it)."""
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)


def _relative(a, b) -> float:
    return 0.0 if a is None or b is None or a == b else abs(a - b) / max(abs(a), abs(b))


def cross_check(pairs: list[Pair], scores: dict[tuple[str, str], dict], leep: pathlib.Path) -> float:
    """Asserts that a few pipeline records equal `leep score --features … --json` on the same
    files: every score (LEEP, NCE, EEP accuracy and every feature metric with its companion
    value) to 1e-9 relative, or null on both sides with the same reason; the counts and the
    feature width exactly. Returns the largest relative difference."""
    step = max(1, len(pairs) // CROSS_CHECKS)
    largest = 0.0
    for pair in pairs[::step][:CROSS_CHECKS]:
        offline = json.loads(_run([str(leep), "score", *pair.files(), "--json"]).stdout)
        streamed = scores[(pair.model, pair.dataset)]
        if pair.predictions is None:
            if present := [key for key in SOFTMAX_SCORES if key in streamed or key in offline]:
                raise RuntimeError(f"{pair.model} on {pair.dataset}: features alone, yet {present}")
        for key in CHECKED_SCORES if pair.predictions is not None else FEATURE_SCORES:
            if key not in streamed or key not in offline:
                raise RuntimeError(f"{pair.model} on {pair.dataset}: {key} missing from the "
                                   f"{'pipeline record' if key not in streamed else 'leep score output'}")
            if not _same(streamed[key], offline[key]):
                raise RuntimeError(f"{pair.model} on {pair.dataset}: pipeline {key} {streamed[key]} "
                                   f"but leep score {offline[key]}")
            largest = max(largest, _relative(streamed[key], offline[key]))
        for key in (*CHECKED_COUNTS, "unscored"):
            if streamed.get(key) != offline.get(key):
                raise RuntimeError(f"{pair.model} on {pair.dataset}: {key} differs "
                                   f"({streamed.get(key)} against {offline.get(key)})")
    checked = CHECKED_SCORES if pairs[0].predictions is not None else FEATURE_SCORES
    print(f"  cross-check: {min(CROSS_CHECKS, len(pairs))} pipeline records "
          f"{'with softmax outputs' if pairs[0].predictions is not None else 'of features alone'} "
          f"equal `leep score` ({', '.join(checked)} to 1e-9; largest relative difference {largest:.1e})",
          flush=True)
    return largest


def features_only_check(pairs: list[Pair], scores: dict[tuple[str, str], dict]) -> dict:
    """Asserts that every pair's run of features alone has the same feature scores as its run
    with softmax outputs (to 1e-9 relative; null, with the same reason, where one is null), the
    same n, Y and D, and none of the keys that need softmax outputs. Returns a summary: how
    many runs were compared, how many values were bit-identical and the largest relative
    difference."""
    compared = identical = 0
    largest = 0.0
    for pair in pairs:
        full = scores[(pair.model, pair.dataset)]
        alone = scores[(pair.features_only().model, pair.dataset)]
        for key in FEATURE_SCORES:
            if key not in alone or not _same(full[key], alone[key]):
                raise RuntimeError(f"{pair.model} on {pair.dataset}: {key} {full.get(key)} with softmax "
                                   f"outputs but {alone.get(key, 'missing')} from the features alone")
            compared += 1
            identical += full[key] == alone[key]
            largest = max(largest, _relative(full[key], alone[key]))
        for key in ("n", "target_classes", "feature_width", "unscored"):
            if full.get(key) != alone.get(key):
                raise RuntimeError(f"{pair.model} on {pair.dataset}: {key} {full.get(key)} with softmax "
                                   f"outputs but {alone.get(key)} from the features alone")
        if present := [key for key in (*SOFTMAX_SCORES, "source_classes") if key in alone]:
            raise RuntimeError(f"{pair.model} on {pair.dataset}: the run of features alone has {present}")
    summary = {"runs": len(pairs), "values": compared, "identical": identical, "largest_relative": largest}
    print(f"  features alone: {len(pairs)} runs without softmax outputs have the feature scores of "
          f"the runs with them ({identical} of {compared} values bit-identical, largest relative "
          f"difference {largest:.1e}) and no leep, nce, eep_accuracy or source_classes", flush=True)
    return summary
