"""Speed of p-SIREN's training step: seconds per epoch, by layer, forward and backward.

``bench_train`` times dense MNIST training (Algorithm 1, step 1) at batch 100 on real batches,
module by module, and extrapolates to one epoch of ``epoch_images`` images. As a baseline measured
in the same run it times the matrix products alone that the same epoch needs (every convolution
and fully-connected layer as one BLAS product forward, two backward): the part no NumPy
implementation can avoid. Timings on a shared machine are noisy, so the load average is reported
with them and the figures are medians over repeats.
"""

from __future__ import annotations

import os
import time

import numpy as np

from minisense.layers import Conv2d, Linear, softmax_cross_entropy
from minisense.network import build_network


def _module_label(module) -> str:
    return getattr(module, "name", type(module).__name__)


def bench_train(images: np.ndarray, labels: np.ndarray, batches: int = 50, repeats: int = 3,
                batch_size: int = 100, epoch_images: int = 60_000, seed: int = 0) -> dict:
    """Seconds per epoch of dense training, split by module and pass; images uint8 (n, 28, 28).

    Each repeat runs ``batches`` SGD steps (forward, backward, update); the median repeat is
    scaled to ``epoch_images / batch_size`` steps.
    """
    from minisense.layers import SGD

    net = build_network("mnist", seed)
    optimizer = SGD(list(net.weighted.values()), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(seed)
    steps_per_epoch = epoch_images / batch_size
    load_before = os.getloadavg()
    runs = []
    for repeat in range(repeats + 1):                        # repeat 0 warms caches up
        forward = np.zeros(len(net.modules))
        backward = np.zeros(len(net.modules))
        other = 0.0
        for _ in range(batches):
            idx = rng.integers(0, len(images), batch_size)
            t = time.perf_counter()
            x = images[idx][..., None].astype(np.float32) * np.float32(1 / 255)
            other -= time.perf_counter() - t
            for i, m in enumerate(net.modules):
                t = time.perf_counter()
                x = m.forward(x)
                forward[i] += time.perf_counter() - t
            t = time.perf_counter()
            _, d = softmax_cross_entropy(x, labels[idx])
            other += time.perf_counter() - t
            for i in reversed(range(len(net.modules))):
                t = time.perf_counter()
                d = net.modules[i].backward(d)
                backward[i] += time.perf_counter() - t
                if d is None:
                    break
            t = time.perf_counter()
            optimizer.step()
            other += time.perf_counter() - t
        if repeat:
            runs.append((forward, backward, other))
    total = [f.sum() + b.sum() + o for f, b, o in runs]
    forward, backward, other = runs[int(np.argsort(total)[len(total) // 2])]
    scale = steps_per_epoch / batches
    layers = {}
    for i, m in enumerate(net.modules):
        label = _module_label(m)
        while label in layers:
            label += "'"
        layers[label] = {"forward_seconds": forward[i] * scale,
                         "backward_seconds": backward[i] * scale}
    result = {
        "epoch_images": epoch_images, "batch_size": batch_size, "batches_timed": batches,
        "repeats": repeats,
        "epoch_seconds": (forward.sum() + backward.sum() + other) * scale,
        "forward_seconds": forward.sum() * scale, "backward_seconds": backward.sum() * scale,
        "other_seconds": other * scale, "layers": layers,
        "gemm_floor_epoch_seconds": _gemm_floor(net, batch_size, batches, repeats) * scale,
        "load_average_before": load_before[0], "load_average_after": os.getloadavg()[0],
        "blas_threads": _blas_threads(),
    }
    result["ratio_to_gemm_floor"] = result["epoch_seconds"] / result["gemm_floor_epoch_seconds"]
    return result


def _gemm_floor(net, batch_size: int, batches: int, repeats: int) -> float:
    """Median seconds for ``batches`` steps of only the matrix products of a training step."""
    rng = np.random.default_rng(1)
    shapes = []                                               # (rows, inner, out) per layer
    h, w, c = 28, 28, 1
    for m in net.modules:
        if isinstance(m, Conv2d):
            h, w = h + 2 * m.padding - m.kernel + 1, w + 2 * m.padding - m.kernel + 1
            out = m.weight.shape[0]
            shapes.append((batch_size * h * w, m.kernel * m.kernel * c, out))
            c = out
        elif isinstance(m, Linear):
            shapes.append((batch_size, m.weight.shape[1], m.weight.shape[0]))
        elif type(m).__name__ == "MaxPool2d":
            h, w = h // m.k, w // m.k
    arrays = [(rng.random((r, k), np.float32), rng.random((k, o), np.float32),
               rng.random((r, o), np.float32)) for r, k, o in shapes]
    times = []
    for _ in range(repeats + 1):
        t = time.perf_counter()
        for _ in range(batches):
            for i, (a, b, dy) in enumerate(arrays):
                a @ b                                          # forward
                a.T @ dy                                       # weight gradient
                if i:                                          # input gradient (not the image's)
                    dy @ b.T
        times.append(time.perf_counter() - t)
    return float(np.median(times[1:]))


def _blas_threads() -> int | None:
    try:
        from threadpoolctl import threadpool_info
        return max(info["num_threads"] for info in threadpool_info())
    except Exception:                                          # threadpoolctl is optional
        return None
