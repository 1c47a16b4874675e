"""The pipeline over TLS: a broker that only accepts TLS clients (ops/broker with
LEEP_BROKER_TLS_CERT/KEY, on a port of its own), one worker, one aggregator and two producers that
reach it with `security.protocol=SSL` and the self-signed certificate as their CA. Every final
score must equal `leep score` on the same files to 1e-9 relative, and a client without the TLS
settings must get nothing.

Tansu 0.6.0 cannot serve TLS itself (its --cert and --key flags are mutually exclusive and neither
alone turns TLS on), so ops/broker puts a TLS terminator in front of it; see ops/broker. What this
checks is the client side: leep's librdkafka settings carry TLS through every role. A second test
notices when the pinned Tansu changes that."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

from cluster import ROOT, Cluster, assert_matches_leep_score, make_run

TLS_PORT = int(os.environ.get("LEEP_TEST_TLS_BROKER_PORT", "19095"))

RUNS = {
    # name: shape and the rows per chunk (several chunks each, so many TLS messages)
    "tls-multiclass": dict(rows=3_000, source=40, target=8, dtype=np.float32, seed=11, chunk_rows=500),
    "tls-binary": dict(rows=2_000, source=10, target=2, dtype=np.float64, seed=12, chunk_rows=300),
}


def make_certificate(directory: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed (ops/setup installs it)")
    cert, key = directory / "broker.crt", directory / "broker.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


class TlsCluster(Cluster):
    """A Cluster whose leep processes all talk TLS."""

    def __init__(self, tmp: pathlib.Path, port: int, cert: pathlib.Path, key: pathlib.Path):
        super().__init__(tmp, port)
        self.tls = ["--kafka-config", "security.protocol=SSL", "--kafka-config", f"ssl.ca.location={cert}"]
        self.env.update(LEEP_BROKER_TLS_CERT=str(cert), LEEP_BROKER_TLS_KEY=str(key))

    @property
    def plaintext(self) -> list[str]:
        return super().common

    @property
    def common(self) -> list[str]:
        return [*super().common, *self.tls]


def test_pipeline_over_tls(tmp_path):
    cert, key = make_certificate(tmp_path)
    cluster = TlsCluster(tmp_path, TLS_PORT, cert, key)
    data = tmp_path / "data"
    runs = {name: make_run(data, name, **{k: v for k, v in spec.items() if k != "chunk_rows"})[0]
            for name, spec in RUNS.items()}
    cluster.broker("start")
    try:
        cluster.start("worker", "worker")
        cluster.start("aggregator", "aggregate", "--repair-after", "5")
        for name, (predictions, labels) in runs.items():
            produced = cluster.kafka_run(
                "produce", "--model", name, "--dataset", f"set-{RUNS[name]['target']}", "--run", f"run-{name}",
                "--predictions", str(predictions), "--labels", str(labels),
                "--chunk-rows", str(RUNS[name]["chunk_rows"]), timeout=120, check=False)
            assert produced.returncode == 0, produced.stderr
        waited = cluster.kafka_run("scores", "--wait-count", str(len(RUNS)), "--timeout", "120", "--json",
                                   timeout=180, check=False)
        assert waited.returncode == 0, waited.stderr + "\n" + cluster.log_tails()
        records = {record["run"]: record for record in map(json.loads, waited.stdout.splitlines())}
        for name, (predictions, labels) in runs.items():
            assert_matches_leep_score(cluster, name, records[f"run-{name}"], predictions, labels)

        # The same question without the TLS settings: the broker hangs up on it, so nothing comes back.
        plaintext = cluster.leep_run("scores", "--wait-count", "1", "--timeout", "5", "--json",
                                     *cluster.plaintext, timeout=60, check=False)
        assert plaintext.returncode != 0, plaintext.stdout
        assert not plaintext.stdout.strip(), plaintext.stdout
    finally:
        cluster.stop_all()
        cluster.broker("stop")


def test_tansu_itself_does_not_serve_tls(tmp_path):
    """Why ops/broker terminates TLS itself: Tansu 0.6.0 refuses --cert together with --key. When
    this fails, the Tansu in .deps/ accepts both: try its own TLS and drop the terminator."""
    tansu = ROOT / ".deps/tansu/bin/tansu"
    if not tansu.exists():
        pytest.skip(f"no Tansu at {tansu} (ops/setup installs it)")
    cert, key = make_certificate(tmp_path)
    try:
        refused = subprocess.run([str(tansu), "broker", "--listener-url", "tcp://127.0.0.1:0",
                                  "--advertised-listener-url", "tcp://127.0.0.1:0", "--cert", str(cert),
                                  "--key", str(key)], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("tansu broker now starts with --cert and --key: see whether it serves TLS itself")
    assert refused.returncode != 0 and "cannot be used with" in refused.stderr, (refused.returncode, refused.stderr)
