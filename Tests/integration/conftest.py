"""Fixtures for the integration tests."""

import os
import sys
import pathlib

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from cluster import Cluster  # noqa: E402


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    port = int(os.environ.get("LEEP_TEST_BROKER_PORT", "19092"))
    tmp = tmp_path_factory.mktemp("cluster")
    cluster = Cluster(tmp, port)
    cluster.broker("start")
    try:
        yield cluster
    finally:
        cluster.stop_all()
        cluster.broker("stop")


