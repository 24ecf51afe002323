"""The layers of the paper's networks, plainly in NumPy, each forward pass beside its backward pass.

Section 3.1 of the paper builds every network from convolutions, max-pooling, HardTanh and
fully-connected layers, with weights in {-1, 0, +1} once binary; Algorithm 1 (p-SIREN) trains
them by backprop. There is no autograd here: each layer caches what its backward pass needs during
``forward`` and returns the gradient with respect to its input from ``backward(dy)``, accumulating
``grad`` for its weights.

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

Nothing here is written for speed; ``minisense.fast.layers`` has the same layers made fast and is
tested equal to these.
"""

from __future__ import annotations

import numpy as np

# ----------------------------------------------------------------------------------------------
# im2col: convolution as one matrix product (the idea of CS231n's im2col.py, for NHWC).
#
# Pad x (n, h, w, c) with p zeros on each side: xp. A stride-1 kh x kw convolution is
#     y[b, y0, x0, o] = sum_{i, j, ch} xp[b, y0 + i, x0 + j, ch] * weight[o, ch, i, j]
# for y0 < ho = h + 2p - kh + 1 and x0 < wo = w + 2p - kw + 1. Lay every patch out as a row,
#     cols[b*ho*wo + y0*wo + x0, (i*kw + j)*c + ch] = xp[b, y0 + i, x0 + j, ch],
# and the weight as a matrix whose row index is cols' column index,
#     wmat[(i*kw + j)*c + ch, o] = weight[o, ch, i, j],
# and the convolution is the matrix product y = cols @ wmat, rows (n*ho*wo, out).
# Backward, as for any product: dwmat = cols.T @ dy, dcols = dy @ wmat.T, and col2im adds each
# entry of dcols back onto the input pixel it was copied from.
# ----------------------------------------------------------------------------------------------

def _pad(x: np.ndarray, padding: int) -> np.ndarray:
    """x (n, h, w, c) -> (n, h + 2p, w + 2p, c) with p = ``padding`` zeros around each image."""
    return np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))


def im2col(x: np.ndarray, kh: int, kw: int, padding: int) -> np.ndarray:
    """Every kh x kw patch of ``x`` as one row (Section 3.1's convolutions as a product).

    x : ndarray of shape (n, h, w, c)
    Returns cols : ndarray of shape (n*ho*wo, kh*kw*c), ho = h + 2*padding - kh + 1 (wo alike),
    with cols[b*ho*wo + y0*wo + x0, (i*kw + j)*c + ch] = xpadded[b, y0 + i, x0 + j, ch].
    """
    n, h, w, c = x.shape
    xp = _pad(x, padding)
    ho, wo = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    cols = np.empty((n, ho, wo, kh, kw, c), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            # kernel tap (i, j) of output pixel (y0, x0) reads input pixel (y0 + i, x0 + j)
            cols[:, :, :, i, j, :] = xp[:, i:i + ho, j:j + wo, :]
    return cols.reshape(n * ho * wo, kh * kw * c)


def col2im(dcols: np.ndarray, x_shape: tuple, kh: int, kw: int, padding: int) -> np.ndarray:
    """Adjoint of :func:`im2col`: scatter-add patch gradients back to the input (Section 3.1).

    dcols : ndarray of shape (n*ho*wo, kh*kw*c), in the layout im2col produces
    x_shape : (n, h, w, c), the input's shape
    Returns dx : ndarray of shape (n, h, w, c); a pixel in several patches gets the sum.
    """
    n, h, w, c = x_shape
    ho, wo = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    d = dcols.reshape(n, ho, wo, kh, kw, c)
    dx = np.zeros((n, h + 2 * padding, w + 2 * padding, c), dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, i:i + ho, j:j + wo, :] += d[:, :, :, i, j, :]
    return dx[:, padding:padding + h, padding:padding + w, :]      # the padding gets nothing


def conv_weight_matrix(weight: np.ndarray) -> np.ndarray:
    """weight (out, in, kh, kw) -> wmat (kh*kw*in, out), rows in the column order of :func:`im2col`.
    """
    out = weight.shape[0]
    return weight.transpose(2, 3, 1, 0).reshape(-1, out)


# ----------------------------------------------------------------------------------------------
# Max-pooling: k x k windows, stride k; the backward pass routes each gradient to the window's
# winner (the input that was the maximum), zeros everywhere else.
# ----------------------------------------------------------------------------------------------

def max_pool(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k x k max-pooling with stride k (Section 3.1).

    x : ndarray of shape (n, h, w, c)
    Returns y : ndarray of shape (n, h//k, w//k, c), and winners : uint8 ndarray of y's shape, the
    offset i*k + j inside its window of each window's *first* maximum (row-major window order),
    so that exactly one input per window gets the gradient, ties included. Rows and columns
    beyond a multiple of k are dropped (as PyTorch's default).
    """
    n, h, w, c = x.shape
    ho, wo = h // k, w // k
    # windows[b, y0, x0, ch, i*k + j] = x[b, k*y0 + i, k*x0 + j, ch]
    windows = x[:, :ho * k, :wo * k, :].reshape(n, ho, k, wo, k, c).transpose(0, 1, 3, 5, 2, 4)
    windows = windows.reshape(n, ho, wo, c, k * k)
    winners = windows.argmax(axis=-1)                # argmax returns the first maximum
    y = np.take_along_axis(windows, winners[..., None], axis=-1)[..., 0]
    return y, winners.astype(np.uint8)


def max_pool_backward(dy: np.ndarray, winners: np.ndarray, x_shape: tuple,
                      k: int) -> np.ndarray:
    """Gradient of :func:`max_pool`: each window's gradient goes to its winner (Section 3.1).

    dy : ndarray of shape (n, h//k, w//k, c); winners : uint8 of the same shape (from max_pool)
    x_shape : (n, h, w, c), the input's shape
    Returns dx : ndarray of shape (n, h, w, c), zero except at the winners (and zero on the
    dropped edge).
    """
    n, ho, wo, c = dy.shape
    dwindows = np.zeros((n, ho, wo, c, k * k), dtype=dy.dtype)
    np.put_along_axis(dwindows, winners[..., None].astype(np.intp), dy[..., None], axis=-1)
    # the inverse of max_pool's window layout: (n, ho, wo, c, i, j) -> (n, ho, i, wo, j, c)
    spatial = dwindows.reshape(n, ho, wo, c, k, k).transpose(0, 1, 4, 2, 5, 3)
    dx = np.zeros(x_shape, dtype=dy.dtype)
    dx[:, :ho * k, :wo * k, :] = spatial.reshape(n, ho * k, wo * k, c)
    return dx


# ----------------------------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------------------------

class Weighted:
    """A layer's weights: latent float weight, fixed mask, ternary forward with the STE.

    Binarization with the straight-through estimator and learned gains (Algorithm 1, step 4):
    the forward pass uses ``effective_weight()``, in {-1, 0, +1} when ``ternary``, and multiplies
    the layer's output by ``gain``; the backward pass gives the *latent* ``weight`` the gradient
    of the ternary one, as if sign() were the identity, so training moves the latent weights
    while the network stays exactly ternary. ``learn_gain`` makes the gain a parameter too
    (``gain_grad``, stepped by :class:`SGD`). ``mask`` (steps 2-4) fixes the pruned weights at 0.

    Attributes
    ----------
    name : str, the paper's name of the layer (``layer1.0``, ``fc``)
    weight : ndarray (out, in, kh, kw) or (out, in), the latent float weights
    mask : ndarray of weight's shape with 0/1 entries, or None (nothing pruned)
    ternary : bool; gain : float; learn_gain : bool; gain_grad : float
    grad : ndarray of weight's shape, dloss/dweight from the last backward pass
    """

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
        """The weight the forward pass uses (weight's shape): masked, in {-1, 0, +1} when ternary.
        """
        # Ternary: a kept weight is +1 or -1 by its sign (a latent exactly 0 counts as +1), so the
        # number of zeros is always the mask's and never drifts during fine-tuning.
        w = np.where(self.weight >= 0, 1, -1).astype(self.weight.dtype) if self.ternary \
            else self.weight
        return w if self.mask is None else w * self.mask

    def _store_grad(self, grad_q: np.ndarray) -> None:
        """Set ``grad`` from dloss/dq (weight's shape), the gradient of the layer's real weight
        q = gain * W_eff.

        Float layers: chain rule, grad = gain * dloss/dq. Ternary layers: the straight-through
        estimator takes the quantizer q(w) = gain * sign(w) as the identity, so the latent weight
        (kept at the float network's scale) gets dloss/dq itself. Pruned positions get nothing.
        """
        grad = grad_q if self.ternary or self.gain == 1.0 else self.gain * grad_q
        self.grad = grad if self.mask is None else grad * self.mask


class Conv2d(Weighted):
    """Convolution, stride 1, zero ``padding``, no bias (Section 3.1), by im2col and one product.

    x (n, h, w, in) -> y (n, ho, wo, out) = gain * conv(x, W_eff), ho = h + 2*padding - kernel + 1
    (wo alike); weight (out, in, kernel, kernel).
    """

    def __init__(self, name: str, in_channels: int, out_channels: int, kernel: int, padding: int,
                 rng: np.random.Generator, dtype=np.float32):
        fan_in = in_channels * kernel * kernel
        # Uniform init with the variance HardTanh's linear region keeps (as Kaiming for identity).
        bound = np.sqrt(3.0 / fan_in)
        super().__init__(name, rng.uniform(-bound, bound, (out_channels, in_channels, kernel,
                                                           kernel)).astype(dtype))
        self.kernel, self.padding = kernel, padding
        self.needs_input_grad = True        # False for the first layer: its input is the image

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (n, h, w, in) -> y (n, ho, wo, out); caches the patches and W_eff for backward."""
        n, h, w, _ = x.shape
        k, p = self.kernel, self.padding
        self._x_shape = x.shape
        self._cols = im2col(x, k, k, p)                          # (n*ho*wo, k*k*in)
        self._weight = self.effective_weight().astype(x.dtype)
        y = self._cols @ conv_weight_matrix(self._weight)        # (n*ho*wo, out)
        if self.learn_gain:
            self._y = y.copy()                   # dloss/dgain = sum(dy * y) before the gain
        if self.gain != 1.0:
            y *= self.gain                       # in place: y keeps x's dtype
        return y.reshape(n, h + 2 * p - k + 1, w + 2 * p - k + 1, -1)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """dy (n, ho, wo, out) -> dx (n, h, w, in), or None when ``needs_input_grad`` is False;
        sets ``grad`` (and ``gain_grad`` when ``learn_gain``)."""
        dy = dy.reshape(-1, dy.shape[-1])                # rows in the order of the patches
        self._weight_and_gain_grads(dy)
        if not self.needs_input_grad:
            return None
        if self.gain != 1.0:
            dy = dy * self.gain
        dcols = dy @ conv_weight_matrix(self._weight).T  # (n*ho*wo, k*k*in)
        k = self.kernel
        return col2im(dcols, self._x_shape, k, k, self.padding)

    def _weight_and_gain_grads(self, dy: np.ndarray) -> None:
        """``gain_grad`` and ``grad`` from dy (rows, out), rows in the order of the patches."""
        if self.learn_gain:
            self.gain_grad = float(np.vdot(dy, self._y))
        dq = self._cols.T @ dy                           # dloss/dq as a matrix, (k*k*in, out)
        k = self.kernel
        out, cin = self.weight.shape[:2]
        self._store_grad(dq.reshape(k, k, cin, out).transpose(3, 2, 0, 1))


class MaxPool2d:
    """k x k max-pooling with stride k (Section 3.1); x (n, h, w, c) -> y (n, h//k, w//k, c)."""

    def __init__(self, k: int):
        self.k = k

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x_shape = x.shape
        y, self._winners = max_pool(x, self.k)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return max_pool_backward(dy, self._winners, self._x_shape, self.k)


class HardTanh:
    """HardTanh(x) = clip(x, -limit, limit) (Section 3.1; limit 1 in the paper's real form).

    Any shape in, the same shape out; the gradient passes where |x| < limit, zero elsewhere.
    """

    def __init__(self, limit: float = 1.0):
        self.limit = limit

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        return np.clip(x, -self.limit, self.limit)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy * (np.abs(self._x) < self.limit)


class Flatten:
    """(n, h, w, c) -> (n, c*h*w) in channel-major order, as PyTorch flattens NCHW tensors
    (Section 3.1: the last convolution block feeds the fully-connected layers)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._shape = x.shape
        return x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        n, h, w, c = self._shape
        return dy.reshape(n, c, h, w).transpose(0, 2, 3, 1)


class Linear(Weighted):
    """Fully-connected layer, no bias (Section 3.1); x (n, in) -> y (n, out) = gain * x @ W_eff.T,
    weight (out, in)."""

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
            self._y = y                          # dloss/dgain = sum(dy * y) before the gain
        return y * self.gain if self.gain != 1.0 else y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """dy (n, out) -> dx (n, in), or None when ``needs_input_grad`` is False; sets ``grad``
        (and ``gain_grad`` when ``learn_gain``)."""
        if self.learn_gain:
            self.gain_grad = float(np.vdot(dy, self._y))
        self._store_grad(dy.T @ self._x)
        if not self.needs_input_grad:
            return None
        return (dy * self.gain) @ self._w if self.gain != 1.0 else dy @ self._w


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray,
                          class_weights: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(logits), the loss Algorithm 1's backprop minimises.

    logits : ndarray of shape (n, classes); labels : int ndarray of shape (n,);
    class_weights : optional ndarray (classes,), w_c > 0: the weighted mean
    sum_i w_{y_i} l_i / sum_i w_{y_i}, PyTorch's ``CrossEntropyLoss(weight=...)``.
    Returns (loss, dlogits), dlogits of the logits' shape: (softmax - onehot) / n, each row
    times w_{y_i} / mean_i w_{y_i} when weighted.
    """
    z = logits - logits.max(axis=1, keepdims=True)       # stable: exp of at most 0
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = logits.shape[0]
    rows = np.arange(n)
    dlogits = np.exp(log_p)
    dlogits[rows, labels] -= 1.0
    if class_weights is None:
        return -float(log_p[rows, labels].mean()), dlogits / n
    w = np.asarray(class_weights, dtype=np.float64)[labels]
    loss = -float((w * log_p[rows, labels]).sum() / w.sum())
    return loss, dlogits * (w / w.sum())[:, None].astype(dlogits.dtype)


class SGD:
    """SGD with momentum for Algorithm 1's backprop (steps 1-4); keeps masked weights 0.

    PyTorch's form: v = mu v + g + wd w; w -= lr v, for every layer's ``weight`` (any shape);
    a learned gain (step 4) gets its own momentum and stays positive.

    ``lsq_gains`` divides each learned gain's gradient by sqrt(N), N the layer's kept weights: the
    step-size gradient scale of LSQ (Esser et al., "Learned Step Size Quantization", ICLR 2020,
    1/sqrt(N * Q_P) with Q_P = 1 for ternary weights). The gain's gradient is a sum over the N
    kept weights while the gain itself does not grow with N: unscaled, the gain's steps grow with
    the layer's size, and a gain can run away until HardTanh saturates.
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
        """One update of every layer's gain (when learned) and weight from their gradients."""
        for i, layer in enumerate(self.layers):
            if layer.learn_gain:
                self.gain_velocity[i] = self.momentum * self.gain_velocity[i] + \
                    self.gain_grad(layer)
                # A Python float: a NumPy float64 gain would silently turn the float32 forward
                # and backward passes into float64 ones (NumPy 2 promotion).
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
