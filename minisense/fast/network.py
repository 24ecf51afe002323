"""The fast twin of :class:`minisense.textbook.network.Network`: the same networks, faster.

:class:`FastNetwork` equals the textbook ``Network`` (same layers, same initial weights for a
seed, outputs and gradients equal to float rounding, integer outputs exactly) and is faster in
three ways, each tested equal to its textbook twin:

* every convolution is told the pooling that follows it (``fast.layers.Conv2d.pool``), so it
  hands the pooling k*k contiguous arrays (rows grouped by window offset) instead of a spatial
  array that pooling would read through strided views;
* a batch goes forward and backward in shards on threads (``fast.shards``), so the copies,
  pooling and HardTanh around the matrix products run on every core, not only the products;
* exact integer inference (:func:`exact_logits`) takes its sums in float32 when they provably fit
  its 24-bit mantissa, in batches on the machine's cores.
"""

from __future__ import annotations

import numpy as np

from minisense.errors import MinisenseError
from minisense.fast import layers as fast_layers
from minisense.fast.layers import (
    Conv2d,
    Flatten,
    HardTanh,
    Linear,
    MaxPool2d,
    Weighted,
    conv_weight_matrix,
    im2col,
    max_pool,
)
from minisense.fast.shards import Shards, Workers
from minisense.textbook.network import EVALUATION_BATCH, INPUT_SCALE, Network

# Integer sums are exact in float32 below 2**24 (its mantissa); float32 products are faster.
EXACT_FLOAT32_LIMIT = 2 ** 24


class FastNetwork(Network):
    """:class:`minisense.textbook.network.Network` built of ``minisense.fast.layers``, its batches
    in shards on the machine's cores (module docstring). Same constructor and methods."""

    layers = fast_layers
    engine = "fast"

    def __init__(self, architecture: str, modules: list, input_shape: tuple[int, int],
                 num_classes: int):
        super().__init__(architecture, modules, input_shape, num_classes)
        for conv, pool in zip(modules, modules[1:]):
            if isinstance(conv, Conv2d) and isinstance(pool, MaxPool2d):
                conv.pool = pool.k      # the convolution hands the pooling grouped rows
        self.shards: Shards | None = None       # the batches' shards (``bench`` times its own)

    def _in_shards(self) -> Shards:
        if self.shards is None:         # made on first use: after a sweep worker pinned BLAS
            self.shards = Shards(self.modules)
        return self.shards

    def forward(self, images: np.ndarray) -> np.ndarray:
        """Equals ``Network.forward``: images uint8 (n, h, w) -> float32 logits (n, classes),
        the batch in shards on threads."""
        with self._in_shards() as shards:
            return shards.forward(self.input(images))

    def backward(self, dlogits: np.ndarray) -> None:
        """Equals ``Network.backward``; each layer's ``grad`` is the sum of its shards'."""
        with self._in_shards() as shards:
            shards.backward(dlogits)

    def batches(self) -> Shards:
        """Equals ``Network.batches``: the shards' threads and one BLAS thread held for a whole
        run of batches, not set up again for every forward and backward pass."""
        return self._in_shards()

    def exact_logits(self, images: np.ndarray, batch_size: int = EVALUATION_BATCH,
                     stop_after: str | None = None) -> np.ndarray:
        """Equals ``Network.exact_logits`` exactly (:func:`exact_logits`)."""
        return exact_logits(self, images, batch_size, stop_after)


def exact_logits(net: FastNetwork, images: np.ndarray, batch_size: int = EVALUATION_BATCH,
                 stop_after: str | None = None) -> np.ndarray:
    """Equals :func:`minisense.textbook.network.exact_logits` exactly: the binary network's
    integer outputs Z (n, num_classes) int64, or with ``stop_after`` a layer's integer sums.

    Faster because the sums are taken in float32 when every partial sum stays below 2**24
    (checked from T and the fan-in counts; else float64), convolution rows come grouped for the
    pooling that follows, and batches run on the machine's cores (integer sums: the same result
    in any order).
    """
    weights = net.ternary_weights()
    names = list(net.weighted)
    # The largest partial sum any layer can form: its input bound times its largest fan-in count.
    bound, previous = 0, INPUT_SCALE
    for name in names:
        w = weights[name]
        fan_in_nonzeros = int(np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max())
        bound = max(bound, previous * fan_in_nonzeros)
        previous = net.thresholds.get(name, 0)
    dtype = np.float32 if bound < EXACT_FLOAT32_LIMIT else np.float64
    matrices = {name: (conv_weight_matrix(w) if w.ndim == 4 else w.T).astype(dtype)
                for name, w in weights.items()}

    def batch(_, start: int) -> np.ndarray:
        x = images[start:start + batch_size, :, :, None].astype(dtype)
        limit = None
        for m in net.modules:
            if isinstance(m, Conv2d):
                n, h, w_, _ = x.shape
                ho = h + 2 * m.padding - m.kernel + 1
                wo = w_ + 2 * m.padding - m.kernel + 1
                q = m.pool if m.name != stop_after else 1      # grouped rows, as in training
                x = (im2col(x, m.kernel, m.kernel, m.padding, q) @ matrices[m.name]).reshape(
                    (n, ho, wo, -1) if q == 1 else (q * q, n, ho // q, wo // q, -1))
            elif isinstance(m, Linear):
                x = x @ matrices[m.name]
            elif isinstance(m, HardTanh):
                x = np.clip(x, -limit, limit)
            elif isinstance(m, MaxPool2d):
                x = max_pool(x, m.k)[0]
            elif isinstance(m, Flatten):
                x = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
            else:
                raise MinisenseError(f"exact_logits does not know the layer {type(m).__name__}")
            if isinstance(m, Weighted):
                if m.name == stop_after:
                    break
                limit = net.thresholds.get(m.name)
        return np.rint(x).astype(np.int64)

    with Workers() as workers:
        return np.concatenate(workers.map(batch, range(0, len(images), batch_size)))
