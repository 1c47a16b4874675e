"""Fixtures for the integration tests: one local broker for the session, and clusters of
`leep` processes on it, each with a topic prefix of its own."""

import os
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from cluster import Cluster  # noqa: E402


@pytest.fixture(scope="session")
def broker_port(tmp_path_factory):
    port = int(os.environ.get("LEEP_TEST_BROKER_PORT", "19092"))
    cluster = Cluster(tmp_path_factory.mktemp("broker"), port)
    cluster.broker("start")
    try:
        yield port
    finally:
        cluster.broker("stop")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, broker_port):
    cluster = Cluster(tmp_path_factory.mktemp("cluster"), broker_port)
    cluster.broker("start")  # creates this cluster's topics on the running broker
    try:
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture
def fresh_cluster(tmp_path, broker_port):
    """Processes of their own and topics of their own, on the session's broker."""
    cluster = Cluster(tmp_path, broker_port)
    cluster.broker("start")
    try:
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture
def report():
    """Records a scenario's result line in .deps/test-results/scenarios.txt, which `ops/test`
    prints after the run (and docs/reliability.md quotes)."""
    path = pathlib.Path(__file__).resolve().parents[2] / ".deps" / "test-results" / "scenarios.txt"
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(line: str) -> None:
        with path.open("a") as file:
            file.write(line + "\n")

    return write
