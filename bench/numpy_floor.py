"""NumPy's floors for `leep score`, timed inside one process (so process start is not counted,
which favours the floor):

* read: two plain single-threaded read passes over the memory-mapped predictions (`sum` in the
  file's own dtype: a vectorised read, nothing else);
* gemm: one float64 product of pass 2's shape, (n×Z)·(Y×Z)ᵀ, with NumPy's bundled BLAS on all
  cores; the operands are made before the clock starts.

Each is the median of `reps` runs after a warm-up. Prints one JSON object, with the BLAS NumPy
was built with.

    python bench/numpy_floor.py PREDICTIONS.npy Y REPS"""
import json
import statistics
import sys
import time

import numpy as np


def median_seconds(function, reps: int) -> float:
    function()  # warm-up
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    path, y, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    theta = np.load(path, mmap_mode="r")
    n, z = theta.shape

    def read_twice():
        for _ in range(2):
            theta.sum()

    read = median_seconds(read_twice, reps)
    left = np.full((n, z), 1.0 / z)
    right = np.full((y, z), 0.5)
    gemm = median_seconds(lambda: left @ right.T, reps)
    blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
    print(json.dumps({"read_twice": read, "gemm": gemm,
                      "blas": f"{blas.get('name')} {blas.get('version')}"}))


if __name__ == "__main__":
    main()
