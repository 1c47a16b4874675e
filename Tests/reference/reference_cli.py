"""The command line both references share: two .npy files and --target-classes in, one JSON
object out (or `error: …` and exit status 1 for input the reference refuses)."""

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
