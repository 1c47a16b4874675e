"""leepstream: publish softmax outputs from Python for leepstream to score (LEEP, NCE, EEP
accuracy), in the exact wire format of docs/wire-format.md.

    from leepstream import LeepProducer

    producer = LeepProducer("127.0.0.1:9092")
    summary = producer.publish("resnet50", "pets", probabilities, labels)           # whole arrays
    with producer.run(model="resnet50", dataset="pets", target_classes=37) as run:  # or as batches arrive
        for images, labels in loader:
            run.add(softmax(net(images)), labels)
"""

from .producer import DeliveryError, LeepProducer, RunSummary, ShardStream, default_run_id
from .validation import DEFAULT_SUM_TOLERANCE, InvalidInput, validate
from .wire import ChunkLocation, WireError

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SUM_TOLERANCE",
    "ChunkLocation",
    "DeliveryError",
    "InvalidInput",
    "LeepProducer",
    "RunSummary",
    "ShardStream",
    "WireError",
    "default_run_id",
    "validate",
    "__version__",
]
