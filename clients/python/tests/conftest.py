"""Runs the tests against the source tree (no install needed): src/ goes first on sys.path."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))
