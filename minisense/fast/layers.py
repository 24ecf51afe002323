"""The layers of :mod:`minisense.textbook.layers`, made fast; each tested equal to its twin.

Section 3.1's convolutions, max-pooling, HardTanh and fully-connected layers, trained by
Algorithm 1's backprop: read the textbook tier first, with its shapes and the straight-through
estimator. What is the same in both tiers (``Weighted``, ``Linear``, ``HardTanh``, ``Flatten``,
``softmax_cross_entropy``, ``SGD``, ``col2im``, ``conv_weight_matrix``) is defined there once and
re-exported here. What is here is for speed: the convolution's rows grouped by pooling window
(``im2col`` with ``pool``), its input gradient by kernel rows (``conv_input_grad``) and work
arrays reused from batch to batch (``Scratch``, ``replica``).
"""

from __future__ import annotations

import copy

import numpy as np

from minisense.textbook import layers as textbook
from minisense.textbook.layers import (
    SGD,
    Flatten,
    HardTanh,
    Linear,
    Weighted,
    col2im,
    conv_weight_matrix,
    softmax_cross_entropy,
)

__all__ = [
    "SGD", "Conv2d", "Flatten", "HardTanh", "Linear", "MaxPool2d", "Scratch", "WINDOW_BYTES",
    "Weighted", "col2im", "conv_input_grad", "conv_weight_matrix", "im2col", "max_pool",
    "max_pool_backward", "replica", "softmax_cross_entropy", "ungroup", "window_offsets",
]

# ----------------------------------------------------------------------------------------------
# im2col (:func:`minisense.textbook.layers.im2col`) with the rows of a convolution followed by
# k x k max-pooling ordered by pooling window: row (g, n, py, px) is output pixel
# (k*py + g//k, k*px + g%k), so the convolution's output is a *grouped* array
# (k*k, n, ho//k, wo//k, out) whose g-th block holds window offset g of every window. The pooling
# then works on k*k contiguous arrays instead of strided views of a spatial array; pixels beyond
# a multiple of k, which pooling drops, are never computed.
# ----------------------------------------------------------------------------------------------

class Scratch:
    """Named work arrays a layer reuses from batch to batch.

    A training step needs large temporaries (patches, gradient windows) of the same shapes
    batch after batch; a layer keeps them instead of asking the allocator for them again (fresh
    large arrays cost page faults on first touch). An array grows to the largest batch it has seen.
    The textbook tier has no twin of this: it allocates afresh.
    """

    def __init__(self):
        self._memory: dict[str, np.ndarray] = {}

    def array(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """An uninitialised array of ``shape``; ``name``'s previous content is gone."""
        size = int(np.prod(shape))
        memory = self._memory.get(name)
        if memory is None or memory.dtype != dtype or memory.size < size:
            memory = self._memory[name] = np.empty(size, dtype=dtype)
        return memory[:size].reshape(shape)


def _array(scratch: Scratch | None, name: str, shape: tuple, dtype) -> np.ndarray:
    return np.empty(shape, dtype=dtype) if scratch is None else scratch.array(name, shape, dtype)


def im2col(x: np.ndarray, kh: int, kw: int, padding: int, pool: int = 1,
           scratch: Scratch | None = None) -> np.ndarray:
    """Patches of ``x`` as rows: (n, h, w, c) -> (n*ho*wo, kh*kw*c), ho = h + 2*padding - kh + 1;
    with ``pool`` = k > 1, the rows of the pooled area grouped by window offset (see above).

    Equals :func:`minisense.textbook.layers.im2col` when ``pool`` is 1 (and the same rows
    reordered otherwise); faster because the rows come grouped by pooling window, so the pooling
    that follows reads contiguous arrays and dropped edge pixels are never computed, one input
    channel is copied from polyphase components by contiguous copies, and the matrix can live in
    a reused work array.

    With one input channel the matrix is returned as the transpose of a C-ordered
    (kh*kw, rows) array: each of its rows is one shifted copy of the images, built from the k*k
    polyphase components of the image (every k-th pixel from (u, v)) by contiguous copies, and
    BLAS reads either orientation at the same speed. With ``scratch`` the matrix lives in its
    "patches" array.
    """
    n, h, w, c = x.shape
    if padding:
        x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    ho, wo = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    hp, wp = ho // pool, wo // pool
    flat = _array(scratch, "patches", (pool * pool * n * hp * wp * kh * kw * c,), x.dtype)
    groups = [divmod(g, pool) for g in range(pool * pool)]
    if c == 1:
        cols = flat.reshape(kh * kw, pool * pool, n, hp, wp)
        phases = [[np.ascontiguousarray(x[:, u::pool, v::pool, 0]) for v in range(pool)]
                  for u in range(pool)]
        for i in range(kh):
            for j in range(kw):
                for g, (a, b) in enumerate(groups):
                    r, s = a + i, b + j
                    cols[i * kw + j, g] = phases[r % pool][s % pool][
                        :, r // pool:r // pool + hp, s // pool:s // pool + wp]
        return cols.reshape(kh * kw, -1).T
    # A strided view (n, ho, wo, kh, kw, c) of every patch; one copy per group puts each patch
    # in a row.
    patches = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    patches = patches.transpose(0, 1, 2, 4, 5, 3)
    cols = flat.reshape(pool * pool, n, hp, wp, kh, kw, c)
    for g, (a, b) in enumerate(groups):
        cols[g] = patches[:, a:a + pool * hp:pool, b:b + pool * wp:pool]
    return cols.reshape(-1, kh * kw * c)


def ungroup(grouped: np.ndarray, k: int, h: int, w: int) -> np.ndarray:
    """A grouped array (k*k, n, h//k, w//k, c) back in its spatial layout (n, h, w, c), zeros at
    the pixels beyond a multiple of k: the textbook tier's layout of the same values."""
    _, n, hp, wp, c = grouped.shape
    spatial = np.zeros((n, h, w, c), dtype=grouped.dtype)
    for target, block in zip(window_offsets(spatial, k), grouped):
        target[...] = block
    return spatial


# The input gradient takes this many bytes of windows at a time (about the second-level cache
# of one core): made by a copy and read at once by a product, they stay in the cache.
WINDOW_BYTES = 2 ** 21


def conv_input_grad(dy: np.ndarray, weight: np.ndarray, x_shape: tuple, padding: int,
                    pool: int = 1, scratch: Scratch | None = None) -> np.ndarray:
    """Gradient of a convolution with respect to its input.

    Equals ``col2im(dy @ conv_weight_matrix(weight).T, x_shape, kh, kw, padding)`` of
    :mod:`minisense.textbook.layers` (the input gradient of its ``Conv2d``); faster because it
    makes windows only for the rows of dy that reach the input, adds kh shifted products instead
    of kh*kw strided scatters, takes a cache-sized block of images at a time and reuses its work
    arrays.

    dy is the output's gradient in the forward pass's layout: rows (n*ho*wo, out), or grouped
    by ``pool`` = k, (k*k, n, ho//k, wo//k, out) (see im2col); weight (out, in, kh, kw) ->
    dx (n, h, w, in).

    Input pixel (a, b) gets sum_{i, j} dy[a + p - i, b + p - j] @ weight[:, :, i, j]. One copy
    lays out, for each row of dy that reaches the input and each input column b, the kw
    columns of dy that reach b (``windows``, kw*out values). One product with the weights of
    every kernel row gives each row's share for each kernel row i (``parts``); input row a then
    adds the shares of dy row a + p - i for i = 0 .. kh-1: kh shifted additions, instead of
    kh*kw strided scatters of the columns of dy @ W.T. Images are taken WINDOW_BYTES of windows
    at a time.
    """
    n, h, w, c = x_shape
    out, _, kh, kw = weight.shape
    ho, wo = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    if pool > 1 and padding > min(kh, kw) - 1:          # padding wider than the kernel (rare)
        dy, pool = ungroup(dy, pool, ho, wo), 1
    if pool == 1:
        dy = dy.reshape(n, ho, wo, out)
    weights = np.ascontiguousarray(weight[:, :, :, ::-1].transpose(3, 0, 2, 1)).reshape(
        kw * out, kh * c)
    dx = np.empty((n, h, w, c), dtype=dy.dtype)
    r0, r1 = _reaching(h, w, kh, kw, padding, pool)[:2]
    step = max(1, WINDOW_BYTES // (max(1, r1 - r0) * w * kw * out * dy.itemsize))
    for lo in range(0, n, step):
        block = dy[:, lo:lo + step] if pool > 1 else dy[lo:lo + step]
        _input_grad_block(block, weights, dx[lo:lo + step], (kh, kw, padding, pool), scratch)
    return dx


def _input_grad_block(dy: np.ndarray, weights: np.ndarray, dx: np.ndarray, geometry: tuple,
                      scratch: Scratch | None) -> None:
    """:func:`conv_input_grad` for the images of ``dx`` (written in place); ``weights`` is the
    (kw*out, kh*in) matrix of the flipped kernel columns."""
    kh, kw, padding, pool = geometry
    m, h, w, c = dx.shape
    out = dy.shape[-1]
    r0, r1, c0, c1 = _reaching(h, w, kh, kw, padding, pool)
    left = kw - 1 - padding                      # where dy's column 0 goes in ``wide``
    # Only the rows of dy that reach the input are laid out (no zero rows: a zero row would
    # cost its windows and its share of the product).
    wide = _array(scratch, "wide", (m, r1 - r0, w + kw - 1, out), dy.dtype)
    if pool > 1:                                 # r0 = c0 = 0 here
        region = wide[:, :, left:left + c1]
        for target, block in zip(window_offsets(region, pool), dy):
            target[...] = block
    else:
        wide[:, :, c0 + left:c1 + left] = dy[:, r0:r1, c0:c1]
    wide[:, :, :c0 + left] = 0                   # the zero columns at the sides
    wide[:, :, c1 + left:] = 0
    windows = _array(scratch, "windows", (m, r1 - r0, w, kw, out), dy.dtype)
    # window b holds dy's columns b + p - kw + 1 .. b + p: kernel columns kw-1 .. 0
    windows[...] = np.lib.stride_tricks.sliding_window_view(wide, kw, axis=2).transpose(
        0, 1, 2, 4, 3)
    parts = _array(scratch, "parts", (m * (r1 - r0) * w, kh * c), dy.dtype)
    np.matmul(windows.reshape(-1, kw * out), weights, out=parts)
    parts = parts.reshape(m, r1 - r0, w, kh, c)
    # input row a, kernel row i: dy row y = a + p - i, row y - r0 of ``parts``, if r0 <= y < r1
    spans = [(i, max(0, r0 - padding + i), min(h, r1 - padding + i)) for i in range(kh)]
    whole = [i for i, a0, a1 in spans if a0 == 0 and a1 == h]
    if whole:                                    # a kernel row that reaches every input row
        first = padding - whole[0] - r0
        dx[...] = parts[:, first:first + h, :, whole[0]]
    else:
        dx[...] = 0
    for i, a0, a1 in spans:
        if a1 > a0 and i not in whole[:1]:
            first = a0 + padding - i - r0
            np.add(dx[:, a0:a1], parts[:, first:first + a1 - a0, :, i], out=dx[:, a0:a1])


def _reaching(h: int, w: int, kh: int, kw: int, padding: int, pool: int) -> tuple:
    """The rows [r0, r1) and columns [c0, c1) of a convolution's output (pooled: the part
    pooling keeps) whose gradient reaches its (h, w) input: y + i - p in [0, h) for some i."""
    ho, wo = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    if pool > 1:
        ho, wo = ho // pool * pool, wo // pool * pool
    return (max(0, padding - kh + 1), min(ho, h + padding),
            max(0, padding - kw + 1), min(wo, w + padding))


def window_offsets(x: np.ndarray, k: int) -> list[np.ndarray]:
    """The k*k arrays (n, h//k, w//k, c) of window offset g = i*k + j of k x k pooling windows:
    the blocks of a grouped array (k*k, n, ...), or strided views of a spatial (n, h, w, c) one.
    """
    if x.ndim == 5:
        return list(x)
    ho, wo = x.shape[1] // k, x.shape[2] // k
    return [x[:, i:ho * k:k, j:wo * k:k, :] for i in range(k) for j in range(k)]


def max_pool(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k x k max-pooling with stride k: (n, h, w, c) or grouped (k*k, n, h//k, w//k, c) ->
    (n, h//k, w//k, c) and the winners.

    Equals :func:`minisense.textbook.layers.max_pool` (on the spatial layout); faster because it
    takes k*k - 1 elementwise maxima of whole arrays, contiguous ones when the input is grouped,
    with preallocated outputs, instead of an argmax over a transposed copy of every window.

    Rows/columns beyond a multiple of k are dropped (as PyTorch's default). ``winners`` (uint8,
    the output's shape) holds for each window the offset i*k + j of its *first* maximum:
    exactly one input per window, so the backward pass routes each gradient once, ties included.
    """
    offsets = window_offsets(x, k)
    y = offsets[0].copy()
    winners = np.zeros(y.shape, dtype=np.uint8)
    later = np.empty(y.shape, dtype=bool)
    claim = np.empty(y.shape, dtype=np.uint8)
    for offset, s in enumerate(offsets[1:], 1):
        np.greater(s, y, out=later)            # strictly: an equal later value does not win
        # offset exceeds every earlier winner, so a maximum sets it where it wins (a whole-array
        # operation instead of a masked assignment, which gathers and scatters by index)
        np.multiply(later, np.uint8(offset), out=claim)
        np.maximum(winners, claim, out=winners)
        np.maximum(y, s, out=y)
    return y, winners


def max_pool_backward(dy: np.ndarray, winners: np.ndarray, x_shape: tuple,
                      k: int) -> np.ndarray:
    """Route each pooled gradient to the one input that won its window; the result has the
    input's layout (spatial or grouped).

    Equals :func:`minisense.textbook.layers.max_pool_backward` (on the spatial layout); faster
    because each window offset is one elementwise product written straight into its block (a
    contiguous array when grouped), and only a ragged edge is zeroed.
    """
    ho, wo = dy.shape[1], dy.shape[2]
    # Every input inside the pooled area is written below; only a remainder needs zeros.
    full = len(x_shape) == 5 or (x_shape[1] == ho * k and x_shape[2] == wo * k)
    dx = (np.empty if full else np.zeros)(x_shape, dtype=dy.dtype)
    won = np.empty(winners.shape, dtype=bool)
    for offset, target in enumerate(window_offsets(dx, k)):
        np.equal(winners, offset, out=won)
        np.multiply(dy, won, out=target)
    return dx


# ----------------------------------------------------------------------------------------------
# Layers: the textbook's, with the fast pieces above
# ----------------------------------------------------------------------------------------------

class Conv2d(textbook.Conv2d):
    """Convolution, stride 1, zero ``padding``; x (n, h, w, in) -> y (n, h', w', out), or the
    grouped (k*k, n, h'//k, w'//k, out) when ``pool`` = k names the max-pooling that follows.

    Equals :class:`minisense.textbook.layers.Conv2d` with ``pool`` 1 (the same initial weights
    from the same ``rng``, and ungrouped, the same output and gradients with ``pool`` k); faster
    because its rows are grouped by pooling window (:func:`im2col`), its input gradient is
    :func:`conv_input_grad`, and its patches and windows live in reused work arrays. ``pool`` may
    also be set after construction (``minisense.network`` does, from the layer that follows).
    """

    def __init__(self, name: str, in_channels: int, out_channels: int, kernel: int, padding: int,
                 rng: np.random.Generator, dtype=np.float32, pool: int = 1):
        super().__init__(name, in_channels, out_channels, kernel, padding, rng, dtype)
        self.pool = pool

    def _work(self) -> Scratch:
        """The layer's work arrays, made on first use (so a blank copy gets its own)."""
        if "_scratch" not in vars(self):
            self._scratch = Scratch()
        return self._scratch

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, h, w, _ = x.shape
        k, p, q = self.kernel, self.padding, self.pool
        self._x_shape = x.shape
        # The previous batch's patches are no longer needed: their memory takes these.
        self._cols = im2col(x, k, k, p, q, self._work())
        self._weight = self.effective_weight().astype(x.dtype)
        y = self._cols @ conv_weight_matrix(self._weight)
        if self.learn_gain:
            self._y = y.copy()                   # dloss/dgain = sum(dy * y) before the gain
        if self.gain != 1.0:
            y *= self.gain
        ho, wo = h + 2 * p - k + 1, w + 2 * p - k + 1
        out = self.weight.shape[0]
        return y.reshape(n, ho, wo, out) if q == 1 else \
            y.reshape(q * q, n, ho // q, wo // q, out)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        self._weight_and_gain_grads(dy.reshape(-1, dy.shape[-1]))  # rows in ``_cols``' order
        if not self.needs_input_grad:                  # the first layer's input is the image
            return None
        if self.gain != 1.0:
            dy = dy * self.gain
        return conv_input_grad(dy, self._weight, self._x_shape, self.padding, self.pool,
                               self._work())


def replica(module, scratch: Scratch):
    """A shallow copy of ``module`` with work arrays of its own (``scratch``): it shares the
    weights, mask and gain, and keeps its own caches, so that several parts of a batch can go
    through one layer at once (``minisense.fast.shards``)."""
    twin = copy.copy(module)
    if isinstance(twin, Conv2d):
        twin._scratch = scratch
    return twin


class MaxPool2d(textbook.MaxPool2d):
    """k x k max-pooling with stride k; (n, h, w, c), or a convolution's grouped output
    (k*k, n, h//k, w//k, c), -> (n, h//k, w//k, c).

    Equals :class:`minisense.textbook.layers.MaxPool2d`; faster because it pools the grouped
    output of a ``Conv2d`` with ``pool`` = k, contiguous arrays, by :func:`max_pool`.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x_shape = x.shape
        y, self._winners = max_pool(x, self.k)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return max_pool_backward(dy, self._winners, self._x_shape, self.k)
