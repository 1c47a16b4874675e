#!/usr/bin/env python3
"""Stop the forward passes of candidates that cannot win, while they stream.

Candidates are scored one after another on one inference node, as a team short of GPUs would.
Each candidate's rows go through the model in a random order (the estimate assumes it), batch
by batch, into `LeepProducer.run`; every few batches the loop asks `stream.verdict()`. Once the
upper end of the candidate's 95 % interval for LEEP is below the best certified lower bound of
the candidates already scored (`likely_loses`), its forward passes stop and the stream is
abandoned. The script reports the share of forward passes saved, and whether the model chosen
is the one every forward pass would have chosen (LEEP of all rows, computed here in NumPy).

    ops/broker start
    .build/release/leep worker --row-sample-rate 0.25 &   # small runs need a larger sample
    .build/release/leep aggregate &
    python3 examples/model-zoo/early_stop.py                       # the prototype zoo of pick_best.py
    python3 examples/model-zoo/early_stop.py --study digits-all10  # a target of the transfer study

`--study TARGET` takes the zoo of examples/transfer-study (run `examples/transfer-study/run
prepare` first): its sources' softmax outputs on the target, read batch by batch in place of a
forward pass.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
import uuid

import numpy as np

HERE = pathlib.Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2] / "clients" / "python" / "src"))
sys.path.insert(0, str(HERE.parents[1] / "python-inference"))
sys.path.insert(0, str(HERE.parent))
from infer_and_publish import PrototypeModel, softmax, target_dataset  # noqa: E402
from leepstream import LeepProducer, ScoreSubscriber  # noqa: E402
from pick_best import ZOO  # noqa: E402


def final_leep(theta: np.ndarray, labels: np.ndarray, classes: int) -> float:
    """LEEP of every row (the float64 definition), to know what every forward pass would choose."""
    joint = np.zeros((classes, theta.shape[1]))
    np.add.at(joint, labels, theta)
    marginal = joint.sum(axis=0)
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)
    return float(np.mean(np.log(np.sum(theta * conditional[labels], axis=1))))


def prototype_zoo(samples: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray, int]:
    """The forward passes of pick_best.py's zoo over its target data, in the loader's order."""
    centres, loader = target_dataset(samples, 10, 16, 256, seed)
    batches = list(loader())
    inputs = np.concatenate([x for x, _ in batches])
    labels = np.concatenate([y for _, y in batches]).astype(np.int64)
    zoo = {name: softmax(PrototypeModel(centres, 100, relatedness, seed + 10 + index)(inputs)).astype(np.float32)
           for index, (name, relatedness) in enumerate(ZOO.items())}
    return zoo, labels, 10


def study_zoo(target: str) -> tuple[dict[str, np.ndarray], np.ndarray, int]:
    folder = HERE.parents[2] / ".deps" / "study" / "predictions" / target
    if not (folder / "labels.npy").exists():
        sys.exit(f"no study predictions in {folder}: run examples/transfer-study/run prepare")
    labels = np.load(folder / "labels.npy").astype(np.int64)
    zoo = {p.stem: np.load(p) for p in sorted(folder.glob("*.npy")) if p.stem != "labels"}
    return zoo, labels, int(labels.max()) + 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default="127.0.0.1:9092")
    parser.add_argument("--topic-prefix", default="leep.")
    parser.add_argument("--study", default=None, help="a target of the transfer study (default: the prototype zoo)")
    parser.add_argument("--samples", type=int, default=4000, help="rows of the prototype zoo's target")
    parser.add_argument("--batch", type=int, default=100, help="rows a forward pass (and a chunk)")
    parser.add_argument("--check-every", type=int, default=2, help="batches between verdicts")
    parser.add_argument("--pause", type=float, default=0.3, help="seconds a batch takes (the forward pass)")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--order", choices=("random", "listed", "reversed"), default="random",
                        help="the order the candidates are scored in (default: random, seeded)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    zoo, labels, classes = study_zoo(args.study) if args.study else prototype_zoo(args.samples, args.seed)
    dataset = f"{args.study or 'blobs'}-{uuid.uuid4().hex[:6]}"
    truth = {name: final_leep(theta.astype(np.float64), labels, classes) for name, theta in zoo.items()}
    producer = LeepProducer(args.brokers, topic_prefix=args.topic_prefix)
    scores = ScoreSubscriber(args.brokers, topic_prefix=args.topic_prefix)
    rng = np.random.default_rng(args.seed)
    done, total, finished, stopped = 0, 0, {}, []
    names = list(zoo)
    names = {"listed": names, "reversed": names[::-1], "random": [names[i] for i in rng.permutation(len(names))]}[args.order]
    for name in names:
        theta = zoo[name]
        order = rng.permutation(len(labels))  # random order: what the estimate assumes
        total += len(labels)
        stream = producer.run(model=name, dataset=dataset, target_classes=classes, rows_per_chunk=args.batch)
        verdict = None
        for index, start in enumerate(range(0, len(labels), args.batch)):
            rows = order[start:start + args.batch]
            time.sleep(args.pause)  # the forward pass
            stream.add(theta[rows], labels[rows])
            done += len(rows)
            if index % args.check_every == args.check_every - 1:
                verdict = stream.verdict()
                if verdict.likely_loses:
                    break
        if verdict is not None and verdict.likely_loses:
            stream.abort()
            seen = stream.rows
            record = verdict.record
            print(f"{name}: stopped after {seen} of {len(labels)} rows: estimate "
                  f"[{record.leep_estimate_low:.4f}, {record.leep_estimate_high:.4f}] below {verdict.leader}'s "
                  f"{verdict.leader_lower:.4f} (all rows: LEEP {truth[name]:.4f})")
            stopped.append(name)
            continue
        stream.close()
        record = scores.wait(stream.run_id, timeout=args.timeout)
        finished[name] = record.leep
        print(f"{name}: all {len(labels)} rows, LEEP {record.leep:.4f}")
    chosen = max(finished, key=finished.get)
    every = max(truth, key=truth.get)
    print(f"forward passes: {done} of {total} ({1 - done / total:.1%} saved); {len(stopped)} of {len(zoo)} candidates "
          f"stopped early")
    print(f"chosen: {chosen}; with every forward pass: {every} ({'the same' if chosen == every else 'NOT the same'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
