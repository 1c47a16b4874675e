"""LEEP as thuml's Transfer-Learning-Library computes it (tllib/ranking/leep.py), rewritten here
from its published algorithm so the benchmark runs what most people run: a per-class masked sum
for the joint, a dense matrix product for every class's expected empirical prediction, and a
Python-level gather of each sample's own class."""

import numpy as np


def log_expected_empirical_prediction(predictions: np.ndarray, labels: np.ndarray) -> float:
    n, source_classes = predictions.shape
    labels = labels.reshape(-1)
    target_classes = int(np.max(labels) + 1)
    normalized = predictions / float(n)
    joint = np.zeros((target_classes, source_classes), dtype=float)
    for y in range(target_classes):
        joint[y] = np.sum(normalized[labels == y], axis=0)
    conditional = (joint / joint.sum(axis=0, keepdims=True)).T  # P(y|z), Z×Y
    empirical_prediction = predictions @ conditional
    empirical_probability = np.array([row[label] for row, label in zip(empirical_prediction, labels)])
    return float(np.mean(np.log(empirical_probability)))
