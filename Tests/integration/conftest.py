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
def report(request):
    """Writes a line to the terminal even while output is captured: the scenario results that
    `ops/test` shows (and docs/reliability.md quotes)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")

    def write(line: str) -> None:
        reporter.write_line("")
        reporter.write_line(line)

    return write
