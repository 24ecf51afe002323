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

import numpy as np

# ----------------------------------------------------------------------------------------------
# im2col: convolution as one matrix product (CS231n's idea, for NHWC).
# Output pixel (n, y, x) sees the input patch xp[n, y:y+kh, x:x+kw, :] of the zero-padded input.
# Laying every patch out as one row of ``cols`` (row index n*ho*wo + y*wo + x, column index
# (i*kw + j)*c + channel) turns the convolution into ``cols @ weight_matrix``.
# ----------------------------------------------------------------------------------------------

def im2col(x: np.ndarray, kh: int, kw: int, padding: int) -> np.ndarray:
    """Patches of ``x`` as rows: (n, h, w, c) -> (n*ho*wo, kh*kw*c), ho = h + 2*padding - kh + 1."""
    n, h, w, c = x.shape
    if padding:
        x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    # A strided view (n, ho, wo, c, kh, kw) of every patch; one copy puts each patch in a row.
    patches = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    ho, wo = patches.shape[1], patches.shape[2]
    if c > 1:                                  # with one channel the order is already right
        patches = patches.transpose(0, 1, 2, 4, 5, 3)
    return np.ascontiguousarray(patches).reshape(n * ho * wo, kh * kw * c)


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


def conv_input_grad(dy: np.ndarray, weight: np.ndarray, x_shape: tuple,
                    padding: int) -> np.ndarray:
    """Gradient of a convolution with respect to its input; equals col2im(dy @ W.T).

    dy (n*ho*wo, out), weight (out, in, kh, kw) -> dx (n, h, w, in). One small product per kernel
    offset (i, j) gives a contiguous (n, ho, wo, in) block to add into the shifted input; this is
    several times faster in NumPy than scattering the strided columns of one big product.
    """
    n, h, w, c = x_shape
    out, _, kh, kw = weight.shape
    ho, wo = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    dx = np.zeros((n, h + 2 * padding, w + 2 * padding, c), dtype=dy.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, i:i + ho, j:j + wo, :] += (dy @ weight[:, :, i, j]).reshape(n, ho, wo, c)
    return dx[:, padding:padding + h, padding:padding + w, :]


def conv_weight_matrix(weight: np.ndarray) -> np.ndarray:
    """(out, in, kh, kw) -> (kh*kw*in, out), the column order :func:`im2col` produces."""
    out = weight.shape[0]
    return weight.transpose(2, 3, 1, 0).reshape(-1, out)


def max_pool(x: np.ndarray, k: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """k x k max-pooling with stride k: (n, h, w, c) -> (n, h//k, w//k, c) and the winners.

    Rows/columns beyond a multiple of k are dropped (as PyTorch's default). ``winners[i*k + j]``
    is a boolean (n, h//k, w//k, c) mask, true where window offset (i, j) is the first maximum of
    its window: exactly one true per window, so the backward pass routes each gradient once.
    """
    n, h, w, c = x.shape
    ho, wo = h // k, w // k
    # The k*k strided sub-images, one per window offset: elementwise ops on them are fast.
    offsets = [x[:, i:ho * k:k, j:wo * k:k, :] for i in range(k) for j in range(k)]
    y = offsets[0].copy()
    for s in offsets[1:]:
        np.maximum(y, s, out=y)
    taken = np.zeros(y.shape, dtype=bool)
    winners = []
    for s in offsets:
        win = (s == y) & ~taken
        taken |= win
        winners.append(win)
    return y, winners


def max_pool_backward(dy: np.ndarray, winners: list[np.ndarray], x_shape: tuple,
                      k: int) -> np.ndarray:
    """Route each pooled gradient to the one input that won its window."""
    ho, wo = dy.shape[1], dy.shape[2]
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for offset, win in enumerate(winners):
        i, j = divmod(offset, k)
        dx[:, i:ho * k:k, j:wo * k:k, :] = dy * win
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
    """Convolution, stride 1, zero ``padding``; x (n, h, w, in) -> y (n, h', w', out)."""

    def __init__(self, name: str, in_channels: int, out_channels: int, kernel: int, padding: int,
                 rng: np.random.Generator, dtype=np.float32):
        fan_in = in_channels * kernel * kernel
        # Uniform init with the variance HardTanh's linear region keeps (as Kaiming for identity).
        bound = np.sqrt(3.0 / fan_in)
        super().__init__(name, rng.uniform(-bound, bound, (out_channels, in_channels, kernel,
                                                           kernel)).astype(dtype))
        self.kernel, self.padding = kernel, padding
        self.needs_input_grad = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, h, w, _ = x.shape
        k, p = self.kernel, self.padding
        self._x_shape = x.shape
        self._cols = im2col(x, k, k, p)
        self._weight = self.effective_weight().astype(x.dtype)
        y = self._cols @ conv_weight_matrix(self._weight)
        if self.learn_gain:
            self._y = y.copy()                   # dloss/dgain = sum(dy * y) before the gain
        if self.gain != 1.0:
            y *= self.gain
        return y.reshape(n, h + 2 * p - k + 1, w + 2 * p - k + 1, -1)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        k, p = self.kernel, self.padding
        dy2 = dy.reshape(-1, dy.shape[-1])
        if self.learn_gain:
            self.gain_grad = float(np.vdot(dy2, self._y))
        dq = self._cols.T @ dy2                        # dloss/dq, (k*k*in, out)
        out, cin = self.weight.shape[:2]
        self._store_grad(dq.reshape(k, k, cin, out).transpose(3, 2, 0, 1))
        if not self.needs_input_grad:                  # the first layer's input is the image
            return None
        if self.gain != 1.0:
            dy2 = dy2 * self.gain
        return conv_input_grad(dy2, self._weight, self._x_shape, p)


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
    """k x k max-pooling with stride k; (n, h, w, c) -> (n, h//k, w//k, c)."""

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
