#!/usr/bin/env python3
"""Pick the best of a small zoo of source models for one target data set, end to end.

Every candidate model runs its forward passes over the target data and streams its softmax
outputs to leepstream (`LeepProducer.run`); a `ScoreSubscriber` watches the data set's
leaderboard as the runs are scored: each run's bracket appears as soon as its pass 1 is merged
(`bracketed`), models that can no longer win are marked `dominated_by`, and the final LEEP
ranks the rest. The script prints each change of the board and, at the end, the model to
fine-tune.

    ops/broker start                                    # a local broker on 127.0.0.1:9092
    .build/release/leep worker &  .build/release/leep aggregate &
    python3 examples/model-zoo/pick_best.py

The candidates are the prototype classifiers of examples/python-inference (a stand-in for
pretrained networks), from unrelated to well aligned with the target classes.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import uuid

HERE = pathlib.Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2] / "clients" / "python" / "src"))
sys.path.insert(0, str(HERE.parents[1] / "python-inference"))
from infer_and_publish import PrototypeModel, softmax, target_dataset  # noqa: E402
from leepstream import LeepProducer, ScoreSubscriber  # noqa: E402

#: The zoo: name → how aligned its prototypes are with the target classes (0 unrelated, 1 aligned).
ZOO = {"proto-unrelated": 0.0, "proto-weak": 0.25, "proto-mid": 0.5, "proto-good": 0.75, "proto-aligned": 0.95}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default="127.0.0.1:9092", help="bootstrap brokers (default %(default)s)")
    parser.add_argument("--topic-prefix", default="leep.", help="topic prefix (default %(default)s)")
    parser.add_argument("--dataset", default=None, help="the target data set's name (default: blobs-<random>)")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--source-classes", type=int, default=100, help="Z of every candidate")
    parser.add_argument("--target-classes", type=int, default=10, help="Y")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for every score")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    dataset = args.dataset or f"blobs-{uuid.uuid4().hex[:6]}"

    centres, loader = target_dataset(args.samples, args.target_classes, 16, 256, args.seed)
    producer = LeepProducer(args.brokers, topic_prefix=args.topic_prefix)
    runs = {}
    for index, (name, relatedness) in enumerate(ZOO.items()):
        model = PrototypeModel(centres, args.source_classes, relatedness, args.seed + 10 + index)
        with producer.run(model=name, dataset=dataset, target_classes=args.target_classes) as stream:
            for inputs, labels in loader():
                stream.add(softmax(model(inputs)), labels)
        runs[name] = stream.run_id
        print(f"published {name}: run {stream.run_id}, {stream.rows} rows")

    scores = ScoreSubscriber(args.brokers, topic_prefix=args.topic_prefix)
    board = None
    for board in scores.watch(dataset, timeout=args.timeout):
        ours = [entry for entry in board if entry.record.run == runs.get(entry.model)]
        lines = []
        for entry in ours:
            record = entry.record
            if record.status == "final":
                state = f"LEEP {record.leep:.4f}"
            elif record.leep_lower is not None:
                state = f"LEEP in [{record.leep_lower:.4f}, {record.leep_upper:.4f}]"
            else:
                state = record.status
            verdict = f"  cannot win: below {entry.dominated_by}" if entry.dominated_by else ""
            lines.append(f"  {entry.rank or '-':>2} {entry.model:<16} {state}{verdict}")
        print(f"leaderboard of {dataset}:\n" + "\n".join(lines))
        if len(ours) == len(ZOO) and all(entry.record.is_outcome for entry in ours):
            break
    else:
        print(f"not every run ended within {args.timeout:g} s", file=sys.stderr)
        return 1
    best = board.best if board else None
    if best is None or best.record.status != "final":
        print("no model was scored", file=sys.stderr)
        return 1
    print(f"fine-tune {best.model}: LEEP {best.record.leep:.4f}; cannot win: "
          + ", ".join(e.model for e in board if e.dominated_by) + ".")
    return 0


if __name__ == "__main__":
    sys.exit(main())
