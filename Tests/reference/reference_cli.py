"""What both references share: their command line (two .npy files and --target-classes in, one
JSON object out, or `error: …` and exit status 1 for input the reference refuses) and their check
of the labels."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

import numpy as np


def run(description: str, first: str, first_help: str, compute: Callable[..., dict], argv=None) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(first, help=first_help)
    parser.add_argument("labels", help="length-n .npy of integer labels")
    parser.add_argument("--target-classes", type=int, default=None, metavar="Y")
    args = parser.parse_args(argv)
    values = np.load(getattr(args, first), allow_pickle=False)
    labels = np.load(args.labels, allow_pickle=False)
    try:
        scores = compute(values, labels, args.target_classes)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(scores))
    return 0


def target_classes_of(labels: np.ndarray, rows: int, what: str, target_classes=None) -> int:
    """Checks labels against the rows they go with (1-D integers, one per row, none negative,
    all below `target_classes` if given) and returns Y. Range checks run on Python ints, so
    uint64 values above 2**63 cannot wrap around."""
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if labels.dtype.kind not in ("i", "u"):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.shape[0] != rows:
        raise ValueError(f"{labels.shape[0]} labels for {rows} {what} rows")
    smallest, largest = int(labels.min()), int(labels.max())
    if smallest < 0:
        raise ValueError(f"negative label {smallest}")
    if target_classes is None:
        return largest + 1
    if int(target_classes) <= largest:
        raise ValueError(f"target_classes={int(target_classes)} but the largest label is {largest}")
    return int(target_classes)
