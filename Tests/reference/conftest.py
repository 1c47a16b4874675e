"""Shared fixtures for the Python cross-check of the Swift `leep` tool."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REFERENCE_DIR = Path(__file__).resolve().parent
REPO_ROOT = REFERENCE_DIR.parents[1]

# Make `import leep_reference` work whatever directory pytest is started from.
if str(REFERENCE_DIR) not in sys.path:
    sys.path.insert(0, str(REFERENCE_DIR))


@pytest.fixture(scope="session")
def leep_bin() -> Path:
    """Path of the release `leep` binary: $LEEP_BIN, else <repo>/.build/release/leep.

    A relative $LEEP_BIN is resolved against the repository root. A missing binary is a test
    failure, not a skip: the cross-check is only meaningful against a real build.
    """
    configured = os.environ.get("LEEP_BIN")
    path = Path(configured) if configured else Path(".build/release/leep")
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"leep binary not found or not executable at {path} "
            f"(set LEEP_BIN, or build it with `swift build -c release`)",
            pytrace=False,
        )
    return path


def pytest_configure(config: pytest.Config) -> None:
    # `-m "not slow"` deselects the large cases for a quick local run; CI runs everything.
    config.addinivalue_line("markers", "slow: a large case (seconds to a minute); runs in CI")
