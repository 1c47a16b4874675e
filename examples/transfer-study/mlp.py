"""A small multilayer perceptron in NumPy: ReLU hidden layers, a softmax output, cross-entropy
loss, trained with Adam on minibatches.

Everything is float64 and every random draw comes from a generator the caller passes in, so a
run is bit-for-bit repeatable on one machine with single-threaded BLAS.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (shifted by the row maximum, so it never overflows)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=1, keepdims=True)


@dataclass
class MLP:
    """Layer l maps a → a @ weights[l] + biases[l]; every layer but the last is followed by ReLU."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]

    @classmethod
    def initialised(cls, sizes: list[int], rng: np.random.Generator) -> MLP:
        """He-initialised weights (normal, std sqrt(2 / fan-in)) and zero biases for the layer
        sizes [inputs, hidden..., outputs]."""
        weights = [rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))
                   for fan_in, fan_out in zip(sizes[:-1], sizes[1:])]
        return cls(weights, [np.zeros(fan_out) for fan_out in sizes[1:]])

    def with_new_head(self, classes: int, rng: np.random.Generator) -> MLP:
        """A copy that keeps the hidden layers and has a freshly initialised output layer."""
        fan_in = self.weights[-1].shape[0]
        head = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, classes))
        return MLP([w.copy() for w in self.weights[:-1]] + [head],
                   [b.copy() for b in self.biases[:-1]] + [np.zeros(classes)])

    def activations(self, x: np.ndarray) -> list[np.ndarray]:
        """The input, every hidden layer's ReLU output, and the logits."""
        layers = [x]
        for index, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = layers[-1] @ w + b
            layers.append(z if index == len(self.weights) - 1 else np.maximum(z, 0.0))
        return layers

    def hidden(self, x: np.ndarray) -> np.ndarray:
        """The last hidden layer's activations: the frozen features a retrained head reads."""
        return self.activations(x)[-2]

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Softmax outputs, float64."""
        return softmax(self.activations(x)[-1])

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(self.activations(x)[-1].argmax(axis=1) == y))

    def gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Gradients of the mean cross-entropy over the batch (x, y) by backpropagation."""
        layers = self.activations(x)
        delta = softmax(layers[-1])
        delta[np.arange(len(y)), y] -= 1.0
        delta /= len(y)
        weight_grads, bias_grads = [], []
        for index in range(len(self.weights) - 1, -1, -1):
            weight_grads.append(layers[index].T @ delta)
            bias_grads.append(delta.sum(axis=0))
            if index > 0:
                delta = (delta @ self.weights[index].T) * (layers[index] > 0.0)
        return weight_grads[::-1], bias_grads[::-1]

    def save(self, path: pathlib.Path) -> None:
        arrays = {f"w{i}": w for i, w in enumerate(self.weights)}
        arrays.update({f"b{i}": b for i, b in enumerate(self.biases)})
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: pathlib.Path) -> MLP:
        with np.load(path) as arrays:
            count = len(arrays.files) // 2
            return cls([arrays[f"w{i}"] for i in range(count)], [arrays[f"b{i}"] for i in range(count)])


def train(model: MLP, x: np.ndarray, y: np.ndarray, *, steps: int, rng: np.random.Generator,
          batch_size: int, learning_rate: float = 1e-3) -> None:
    """Trains model in place for a fixed number of Adam steps (β1 0.9, β2 0.999, ε 1e-8) on
    minibatches of a fresh permutation of the data every epoch (an epoch's last, incomplete
    batch is dropped)."""
    parameters = model.weights + model.biases
    first = [np.zeros_like(p) for p in parameters]
    second = [np.zeros_like(p) for p in parameters]
    beta1, beta2, epsilon = 0.9, 0.999, 1e-8
    batch_size = min(batch_size, len(y))
    order = np.empty(0, dtype=np.int64)
    for step in range(1, steps + 1):
        if len(order) < batch_size:
            order = rng.permutation(len(y))
        batch, order = order[:batch_size], order[batch_size:]
        weight_grads, bias_grads = model.gradients(x[batch], y[batch])
        correction1 = 1.0 - beta1 ** step
        correction2 = 1.0 - beta2 ** step
        for parameter, grad, m, v in zip(parameters, weight_grads + bias_grads, first, second):
            m *= beta1
            m += (1.0 - beta1) * grad
            v *= beta2
            v += (1.0 - beta2) * grad * grad
            parameter -= learning_rate * (m / correction1) / (np.sqrt(v / correction2) + epsilon)
