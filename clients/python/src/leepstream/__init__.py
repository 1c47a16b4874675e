"""leepstream: publish softmax outputs from Python for leepstream to score (LEEP, NCE, EEP
accuracy), in the exact wire format of docs/wire-format.md; with the source model's
penultimate-layer features beside them, or alone for a model without a classifier head, for
LogME and the H-score.

    from leepstream import LeepProducer

    producer = LeepProducer("127.0.0.1:9092")
    summary = producer.publish("resnet50", "pets", probabilities, labels)           # whole arrays
    summary = producer.publish("resnet50", "pets", probabilities, labels, features=features)  # n×D
    summary = producer.publish("dinov2", "pets", labels=labels, features=features)  # no classifier head
    with producer.run(model="resnet50", dataset="pets", target_classes=37) as run:  # or as batches arrive
        for images, labels in loader:
            run.add(softmax(net(images)), labels)                                   # features=… on every add, or none
            # run.add(labels=labels, features=encoder(images))                      # features alone

And to read the scores back:

    from leepstream import ScoreSubscriber

    scores = ScoreSubscriber("127.0.0.1:9092")
    final = scores.wait(summary.run, timeout=600)                 # the run's outcome, typed
    board = scores.leaderboard("pets", rank_by="leep")           # latest per model, ranked, verdicts
    for board in scores.watch("pets"):                            # each time it changes
        ...
"""

from .producer import DeliveryError, LeepProducer, RunSummary, ShardStream, default_run_id
from .scores import (InvalidScoreRecord, Leaderboard, LeaderboardEntry, RunTimeout, ScoreRecord, ScoreSubscriber,
                     Verdict, dominance)
from .validation import DEFAULT_SUM_TOLERANCE, InvalidInput, validate, validate_features, validate_labels
from .wire import ChunkLocation, WireError

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SUM_TOLERANCE",
    "ChunkLocation",
    "DeliveryError",
    "InvalidInput",
    "InvalidScoreRecord",
    "Leaderboard",
    "LeaderboardEntry",
    "LeepProducer",
    "RunSummary",
    "RunTimeout",
    "ScoreRecord",
    "ScoreSubscriber",
    "Verdict",
    "ShardStream",
    "WireError",
    "default_run_id",
    "dominance",
    "validate",
    "validate_features",
    "validate_labels",
    "__version__",
]
