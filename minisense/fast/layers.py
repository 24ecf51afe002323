"""Layers of the paper's networks in NumPy, each forward pass beside its backward pass.

Section 3.1 of the paper builds every network from convolutions, max-pooling, HardTanh and
fully-connected layers; Algorithm 1 (p-SIREN) trains them by backprop. There is no autograd here:
each layer caches what its backward pass needs during ``forward`` and returns the gradient with
respect to its input from ``backward(dy)``, accumulating ``grad`` for its weights.

Activations are NHWC, ``x : ndarray of shape (n, h, w, c)``; weights keep the usual layouts,
``(out, in, kh, kw)`` for convolutions and ``(out, in)`` for fully-connected layers, so a
checkpoint reads like any other framework's. There are no biases: the binary network must be a
pure {-1, 0, +1}-weight network (see ``minisense.network`` for the integer arithmetic).

A weighted layer holds latent float ``weight``, an optional fixed ``mask`` (p-SIREN steps 2-4) and
a ``ternary`` flag (step 4). Its forward uses the *effective* weight ``mask * weight`` or, when
ternary, ``mask * sign(weight)``; the backward treats ``sign`` as the identity (the
straight-through estimator) so the latent weights keep learning while the forward stays exactly
ternary. A scalar ``gain`` multiplies the layer's output: 1 for the float stages, and the fixed
per-layer scale of the binary network (``network.binarize``).
"""

from __future__ import annotations

import copy

import numpy as np

# ----------------------------------------------------------------------------------------------
# im2col: convolution as one matrix product (CS231n's idea, for NHWC).
# Output pixel (n, y, x) sees the input patch xp[n, y:y+kh, x:x+kw, :] of the zero-padded input.
# Laying every patch out as one row of ``cols`` (row index n*ho*wo + y*wo + x, column index
# (i*kw + j)*c + channel) turns the convolution into ``cols @ weight_matrix``.
#
# A convolution followed by k x k max-pooling orders its rows by pooling window instead: row
# (g, n, py, px) is output pixel (k*py + g//k, k*px + g%k), so its output is a *grouped* array
# (k*k, n, ho//k, wo//k, out) whose g-th block holds window offset g of every window. The pooling
# then works on k*k contiguous arrays, several times faster in NumPy than strided views of a
# spatial array; pixels beyond a multiple of k, which pooling drops, are never computed.
# ----------------------------------------------------------------------------------------------

class Scratch:
    """Named work arrays a layer reuses from batch to batch.

    A training step needs tens of megabytes of temporaries (patches, gradient windows); a layer
    keeps them from batch to batch instead of asking the allocator for them again. An array
    grows to the largest batch it has seen (a shard of 50 MNIST images takes about 20 MB of
    patches in the two convolutions).
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
    the pixels beyond a multiple of k."""
    _, n, hp, wp, c = grouped.shape
    spatial = np.zeros((n, h, w, c), dtype=grouped.dtype)
    for target, block in zip(window_offsets(spatial, k), grouped):
        target[...] = block
    return spatial


def col2im(dcols: np.ndarray, x_shape: tuple, kh: int, kw: int, padding: int) -> np.ndarray:
    """Adjoint of :func:`im2col`: scatter-add patch gradients back to an (n, h, w, c) input.

    The plain statement of a convolution's input gradient, kept as the oracle for the faster
    :func:`conv_input_grad`.
    """
    n, h, w, c = x_shape
    ho, wo = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    d = dcols.reshape(n, ho, wo, kh, kw, c)
    dx = np.zeros((n, h + 2 * padding, w + 2 * padding, c), dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, i:i + ho, j:j + wo, :] += d[:, :, :, i, j, :]
    return dx[:, padding:padding + h, padding:padding + w, :]


# The input gradient takes this many bytes of windows at a time (about the second-level cache
# of one core): made by a copy and read at once by a product, they stay in the cache.
WINDOW_BYTES = 2 ** 21


def conv_input_grad(dy: np.ndarray, weight: np.ndarray, x_shape: tuple, padding: int,
                    pool: int = 1, scratch: Scratch | None = None) -> np.ndarray:
    """Gradient of a convolution with respect to its input; equals col2im(dy @ W.T).

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
    # cost its windows and its share of the product, 4/18 of them for MNIST's layer2.0).
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


def conv_weight_matrix(weight: np.ndarray) -> np.ndarray:
    """(out, in, kh, kw) -> (kh*kw*in, out), the column order :func:`im2col` produces."""
    out = weight.shape[0]
    return weight.transpose(2, 3, 1, 0).reshape(-1, out)


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
        # offset exceeds every earlier winner, so a maximum sets it where it wins (and is
        # several times faster than a masked assignment)
        np.multiply(later, np.uint8(offset), out=claim)
        np.maximum(winners, claim, out=winners)
        np.maximum(y, s, out=y)
    return y, winners


def max_pool_backward(dy: np.ndarray, winners: np.ndarray, x_shape: tuple,
                      k: int) -> np.ndarray:
    """Route each pooled gradient to the one input that won its window; the result has the
    input's layout (spatial or grouped)."""
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
# Layers
# ----------------------------------------------------------------------------------------------

class Weighted:
    """Shared weight handling: latent weight, fixed mask, ternary forward with the STE."""

    name: str
    weight: np.ndarray

    def __init__(self, name: str, weight: np.ndarray):
        self.name = name
        self.weight = weight
        self.mask: np.ndarray | None = None
        self.ternary = False
        self.gain = 1.0
        self.learn_gain = False             # p-SIREN step 4 learns each layer's scale too
        self.gain_grad = 0.0
        self.grad = np.zeros_like(weight)

    def effective_weight(self) -> np.ndarray:
        """The weight the forward pass uses: masked, and in {-1, 0, +1} when ternary."""
        # Ternary: a kept weight is +1 or -1 by its sign (a latent exactly 0 counts as +1), so the
        # number of zeros is always the mask's and never drifts during fine-tuning.
        w = np.where(self.weight >= 0, 1, -1).astype(self.weight.dtype) if self.ternary \
            else self.weight
        return w if self.mask is None else w * self.mask

    def _store_grad(self, grad_q: np.ndarray) -> None:
        """Set ``grad`` from dloss/dq, the gradient of the layer's real weight q = gain * W_eff.

        Float layers: chain rule, grad = gain * dloss/dq. Ternary layers: the straight-through
        estimator takes the quantizer q(w) = gain * sign(w) as the identity, so the latent weight
        (kept at the float network's scale) gets dloss/dq itself. Pruned positions get nothing.
        """
        grad = grad_q if self.ternary or self.gain == 1.0 else self.gain * grad_q
        self.grad = grad if self.mask is None else grad * self.mask


class Conv2d(Weighted):
    """Convolution, stride 1, zero ``padding``; x (n, h, w, in) -> y (n, h', w', out), or the
    grouped (k*k, n, h'//k, w'//k, out) when ``pool`` = k names the max-pooling that follows."""

    def __init__(self, name: str, in_channels: int, out_channels: int, kernel: int, padding: int,
                 rng: np.random.Generator, dtype=np.float32):
        fan_in = in_channels * kernel * kernel
        # Uniform init with the variance HardTanh's linear region keeps (as Kaiming for identity).
        bound = np.sqrt(3.0 / fan_in)
        super().__init__(name, rng.uniform(-bound, bound, (out_channels, in_channels, kernel,
                                                           kernel)).astype(dtype))
        self.kernel, self.padding = kernel, padding
        self.pool = 1
        self.needs_input_grad = True

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
        k, p, q = self.kernel, self.padding, self.pool
        dy2 = dy.reshape(-1, dy.shape[-1])             # rows in the order of ``_cols``
        if self.learn_gain:
            self.gain_grad = float(np.vdot(dy2, self._y))
        dq = self._cols.T @ dy2                        # dloss/dq, (k*k*in, out)
        out, cin = self.weight.shape[:2]
        self._store_grad(dq.reshape(k, k, cin, out).transpose(3, 2, 0, 1))
        if not self.needs_input_grad:                  # the first layer's input is the image
            return None
        if self.gain != 1.0:
            dy = dy * self.gain
        return conv_input_grad(dy, self._weight, self._x_shape, p, q, self._work())


def replica(module, scratch: Scratch):
    """A shallow copy of ``module`` with work arrays of its own (``scratch``): it shares the
    weights, mask and gain, and keeps its own caches, so that several parts of a batch can go
    through one layer at once (``minisense.fast.shards``)."""
    twin = copy.copy(module)
    if isinstance(twin, Conv2d):
        twin._scratch = scratch
    return twin


class Linear(Weighted):
    """Fully-connected layer; x (n, in) -> y (n, out) = gain * x @ weight.T."""

    def __init__(self, name: str, in_features: int, out_features: int,
                 rng: np.random.Generator, dtype=np.float32):
        bound = np.sqrt(3.0 / in_features)
        weight = rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype)
        super().__init__(name, weight)
        self.needs_input_grad = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        self._w = self.effective_weight().astype(x.dtype)
        y = x @ self._w.T
        if self.learn_gain:
            self._y = y
        return y * self.gain if self.gain != 1.0 else y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        if self.learn_gain:
            self.gain_grad = float(np.vdot(dy, self._y))
        self._store_grad(dy.T @ self._x)
        if not self.needs_input_grad:
            return None
        return (dy * self.gain) @ self._w if self.gain != 1.0 else dy @ self._w


class HardTanh:
    """HardTanh(x) = clip(x, -limit, limit) (Section 3.1; limit 1 in the paper's real form)."""

    def __init__(self, limit: float = 1.0):
        self.limit = limit

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        return np.clip(x, -self.limit, self.limit)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy * (np.abs(self._x) < self.limit)


class MaxPool2d:
    """k x k max-pooling with stride k; (n, h, w, c), or a convolution's grouped output
    (k*k, n, h//k, w//k, c), -> (n, h//k, w//k, c)."""

    def __init__(self, k: int):
        self.k = k

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x_shape = x.shape
        y, self._winners = max_pool(x, self.k)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return max_pool_backward(dy, self._winners, self._x_shape, self.k)


class Flatten:
    """(n, h, w, c) -> (n, c*h*w) in channel-major order, as PyTorch flattens NCHW tensors."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._shape = x.shape
        return x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        n, h, w, c = self._shape
        return dy.reshape(n, c, h, w).transpose(0, 2, 3, 1)


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(logits) and its gradient; logits (n, k), labels (n,) int."""
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = logits.shape[0]
    loss = -float(log_p[np.arange(n), labels].mean())
    dlogits = np.exp(log_p)
    dlogits[np.arange(n), labels] -= 1.0
    return loss, dlogits / n


class SGD:
    """SGD with momentum (PyTorch's form: v = mu v + g + wd w; w -= lr v); keeps masked weights 0.

    ``lsq_gains`` divides each learned gain's gradient by sqrt(N), N the layer's kept weights: the
    step-size gradient scale of LSQ (Esser et al., "Learned Step Size Quantization", ICLR 2020,
    1/sqrt(N * Q_P) with Q_P = 1 for ternary weights). The gain's gradient is a sum over the N
    kept weights while the gain itself does not grow with N; unscaled, at 0% sparsity on MNIST
    the gains rose more than 100-fold within 15 batches of step 4, HardTanh saturated and the
    loss went from 0.48 to 24 (reference_outputs/psiren/unscaled-gains/).
    """

    def __init__(self, layers: list[Weighted], lr: float, momentum: float = 0.9,
                 weight_decay: float = 0.0, lsq_gains: bool = False):
        self.layers, self.lr, self.momentum, self.weight_decay = layers, lr, momentum, weight_decay
        self.lsq_gains = lsq_gains
        self.velocity = [np.zeros_like(layer.weight) for layer in layers]
        self.gain_velocity = [0.0 for _ in layers]

    def gain_grad(self, layer: Weighted) -> float:
        """The gradient the gain's update uses (scaled when ``lsq_gains``)."""
        if not self.lsq_gains:
            return layer.gain_grad
        kept = layer.weight.size if layer.mask is None else int(np.count_nonzero(layer.mask))
        return layer.gain_grad / float(np.sqrt(max(kept, 1)))

    def step(self) -> None:
        for i, layer in enumerate(self.layers):
            if layer.learn_gain:
                self.gain_velocity[i] = self.momentum * self.gain_velocity[i] + \
                    self.gain_grad(layer)
                # A Python float: a NumPy float64 gain would silently turn the float32 forward
                # and backward passes into float64 ones (NumPy 2 promotion), 3x slower.
                layer.gain = max(float(layer.gain - self.lr * self.gain_velocity[i]), 1e-6)
        for layer, v in zip(self.layers, self.velocity):
            g = layer.grad
            if self.weight_decay:
                g = g + self.weight_decay * layer.weight
            v *= self.momentum
            v += g
            layer.weight -= self.lr * v
            if layer.mask is not None:
                layer.weight *= layer.mask
