"""Delta evaluation in plain NumPy: a neighbour's logits from the current network's integers.

The readable twin of the Numba kernels (``minisense.fast.delta``, ``minisense.fast.kernels``) and
their test oracle. Read this first; the kernels do the same arithmetic in polyphase planes.
``DeltaEvaluator`` at the end is the textbook twin of ``minisense.fast.delta.DeltaEvaluator``:
the same constructor and methods, tested equal to it exactly (``tests/test_textbook_delta.py``).

A first neighbour (Section 3.2) differs from the current network by one bit swap: in one layer the
nonzero weight s = W[src] (+1 or -1) moves to the zero position dst. The first-neighbour surveys
(Section 4.2, "Stochastic search") and SENSE (Section 4.3, Algorithm 2) score very many of them.
The binary network computes in integers (``minisense.network``): with u the uint8 image
(x = u / INPUT_SCALE) and the gains folded into integer HardTanh limits T_l::

    H_0 = u,   Z_l = W_l(H_{l-1}),   H_l = clip(pool(Z_l), -T_l, T_l),   logits Z = W_L(H_{L-1})

(the last gain only scales Z, so the prediction argmax Z and the scores use Z itself).

W_l is linear, so the swap changes layer l's sums by dZ_l = s * (its input at dst) - s * (its
input at src): only the output channel (conv) or unit (fc) at src and the one at dst move. From
there the change travels forward, and at every layer only what changed is pushed on:

1. new sums Z + dZ of the changed channels / units only;
2. max-pool and clip them, compare with the cached H: dH, nonzero only where H really changed
   (a window whose max clips to the same value, e.g. stays saturated, stops the change there);
3. the next layer is linear, so its sums change by W(dH): only the changed entries are pushed.

Arrays are NHWC int64 (conv activations (n, h, w, c), fc activations (n, features)); the sums are
exact integers, the same ones ``network.exact_logits`` computes. The change of a conv layer is a
``Change``: the channels that changed and their change planes, zero where nothing changed.

A neighbour's score on n labelled images (``score_logits``) is (correct, margin): the images
whose argmax Z is the label, and the sum of the clipped margins Z[y] - max_{k != y} Z[k].
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minisense.errors import MinisenseError
from minisense.swaps import apply_swap
from minisense.textbook.layers import Conv2d, Linear, MaxPool2d
from minisense.textbook.network import Network, exact_logits


class Change(NamedTuple):
    """The change of a conv layer's sums or activations: only the listed channels changed.

    channels : (m,) int64, the channels that may have changed (increasing)
    values : (n, h, w, m) int64, values[..., k] the change of channel channels[k]; zero at the
        entries that did not change
    """

    channels: np.ndarray
    values: np.ndarray


class Cache(NamedTuple):
    """The current binary network and its integers on n images: all a delta evaluation reads.

    weights : dict layer name -> int8 array in {-1, 0, +1}, the layer's layout ((out, in, k, k)
        for a conv, (out, in) for a fc layer)
    thresholds : dict hidden layer name -> int T_l (the HardTanh limits)
    names : the layer names in forward order (layer1.0, layer2.0, fc | fc1, fc2)
    paddings, pools : (p1, p2) the two convs' zero padding, (q1, q2) their max-pool sizes
    u : (n, h, w, 1) the images, H_0
    z1, h1 : (n, H1, W1, C1) layer1.0's sums before pooling; (n, H1/q1, W1/q1, C1) its H_1
    z2, h2 : the same for layer2.0
    x3 : (n, C2 * H2/q2 * W2/q2) H_2 flattened channel-major (PyTorch order), the fc input
    z3, h3 : (n, units) the hidden fc layer's sums and H_3 (car fc1); None without one (mnist)
    logits : (n, classes) the integer outputs Z
    All activations are int64.
    """

    weights: dict
    thresholds: dict
    names: list
    paddings: tuple
    pools: tuple
    u: np.ndarray
    z1: np.ndarray
    h1: np.ndarray
    z2: np.ndarray
    h2: np.ndarray
    x3: np.ndarray
    z3: np.ndarray | None
    h3: np.ndarray | None
    logits: np.ndarray


def pool(z: np.ndarray, q: int) -> np.ndarray:
    """q x q max-pooling, stride q, of (n, h, w[, c]) -> (n, h // q, w // q[, c]).

    Pooled (Y, X) is the max of the sums at (q*Y + dy, q*X + dx) over the window offsets
    0 <= dy, dx < q (a ragged edge is dropped): the max over q*q strided views."""
    h, w = z.shape[1] // q * q, z.shape[2] // q * q
    return np.maximum.reduce([z[:, dy:h:q, dx:w:q] for dy in range(q) for dx in range(q)])


def current_cache(net: Network, images: np.ndarray) -> Cache:
    """Run the binary ``net`` once on uint8 images (n, h, w) and keep every integer (``Cache``).

    This is the only full forward pass; every neighbour is then evaluated from the cache.
    """
    names = list(net.weighted)
    convs = [m for m in net.modules if isinstance(m, Conv2d)]
    pools = tuple(m.k for m in net.modules if isinstance(m, MaxPool2d))
    linears = [m for m in net.modules if isinstance(m, Linear)]
    if len(convs) != 2 or len(pools) != 2 or len(linears) not in (1, 2):
        raise MinisenseError(f"delta evaluation needs the paper's layout (two conv-pool layers, "
                             f"then one or two fc layers); got the layers {', '.join(names)}")
    t = net.thresholds
    z1 = exact_logits(net, images, stop_after=names[0])
    h1 = np.clip(pool(z1, pools[0]), -t[names[0]], t[names[0]])
    z2 = exact_logits(net, images, stop_after=names[1])
    h2 = np.clip(pool(z2, pools[1]), -t[names[1]], t[names[1]])
    x3 = h2.transpose(0, 3, 1, 2).reshape(len(images), -1)           # channel-major flatten
    z3 = h3 = None
    if len(linears) == 2:
        z3 = exact_logits(net, images, stop_after=names[2])
        h3 = np.clip(z3, -t[names[2]], t[names[2]])
    return Cache(net.ternary_weights(), dict(t), names, (convs[0].padding, convs[1].padding),
                 pools, images[..., None].astype(np.int64), z1, h1, z2, h2, x3, z3, h3,
                 exact_logits(net, images))


def moved_weight(w: np.ndarray, src: int, dst: int) -> tuple[int, tuple, tuple]:
    """The bit swap src -> dst of weight array w: (s, the index tuple of src, that of dst)."""
    flat = w.reshape(-1)
    if not (0 <= src < flat.size and 0 <= dst < flat.size) or flat[src] == 0 or flat[dst] != 0:
        raise MinisenseError(f"swap {src} -> {dst} must move a nonzero weight to a zero position "
                             f"of the layer's {flat.size} weights (Section 3.2)")
    return int(flat[src]), np.unravel_index(src, w.shape), np.unravel_index(dst, w.shape)


# ----------------------------------------------------------------------------------------------
# The three steps of the module docstring, for convolutions and for fc layers.
# ----------------------------------------------------------------------------------------------

def conv_swap_delta(x: np.ndarray, padding: int, out_hw: tuple, s: int, src: tuple,
                    dst: tuple) -> Change:
    """Step 1 for a swap inside a conv: the change of its sums, in channels oa and ob only.

    x (n, h, w, in) is the layer's input, src = (oa, ca, ia, ja) and dst = (ob, cb, ib, jb) the
    moved weight's old and new positions in the (out, in, k, k) weight, s its sign. The change
    has the shape (n, H, W, 1 or 2) of the layer's sums (out_hw = (H, W)).
    """
    # Z[n, y, x, o] = sum over (c, i, j) of W[o, c, i, j] * X[n, y + i, x + j, c], X the input
    # zero-padded by p. A weight is shared by all positions: the one at (o, c, i, j) touches
    # every output (y, x) of channel o, reading the input plane c shifted by (i, j).
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    (oa, ca, ia, ja), (ob, cb, ib, jb) = src, dst
    h, w = out_hw
    channels = np.unique([oa, ob])
    dz = np.zeros((len(x), h, w, len(channels)), np.int64)
    dz[..., channels == oa] -= s * xp[:, ia:ia + h, ja:ja + w, ca, None]   # oa loses the weight
    dz[..., channels == ob] += s * xp[:, ib:ib + h, jb:jb + w, cb, None]   # ob gains it
    return Change(channels, dz)


def pool_clip_delta(z: np.ndarray, dz: Change, q: int, t: int, h: np.ndarray) -> Change:
    """Step 2: the changed channels' new sums through max-pool and HardTanh.

    z (n, H, W, C) cached sums, dz their change, h (n, H/q, W/q, C) the cached
    H = clip(pool(z), -t, t). Returns the change of H, in the same channels.
    """
    # A pooled entry is the max of its q x q window of sums, so it is recomputed from the
    # window's new sums; clipping to [-t, t] then hides any change beyond the threshold (a window
    # saturated before and after does not change). Channels not in dz are not even read.
    new_h = np.clip(pool(z[..., dz.channels] + dz.values, q), -t, t)
    return Change(dz.channels, new_h - h[..., dz.channels])


def conv_push(dh: Change, w: np.ndarray, padding: int, out_hw: tuple) -> Change:
    """Step 3 into a conv: the change of its sums caused by the change dh of its input.

    w (out, in, k, k) is the conv's ternary weight, out_hw = (H, W) its output size. Returns the
    change (n, H, W, m) of the m output channels that a changed input entry reaches.
    """
    # An input entry (y, x) of channel c sits at (y + p, x + p) of the padded input, and the tap
    # (i, j) of W[o, c] reads it for the output (y + p - i, x + p - j) of channel o (when that is
    # inside the output). For one tap this is the same shift for every entry, so the changes of
    # all entries are pushed at once by adding the padded change plane shifted by (i, j). The
    # plane is zero where H did not change: only the changed entries add anything.
    h, w_out = out_hw
    dz = np.zeros((w.shape[0], len(dh.values), h, w_out), np.int64)   # dz[o]: channel o's plane
    reached = np.zeros(w.shape[0], bool)
    for k, c in enumerate(dh.channels):
        if not dh.values[..., k].any():                 # this input channel did not change
            continue
        dp = np.pad(dh.values[..., k], ((0, 0), (padding, padding), (padding, padding)))
        for o, i, j in zip(*np.nonzero(w[:, c])):       # the taps that read input channel c
            dz[o] += w[o, c, i, j] * dp[:, i:i + h, j:j + w_out]
            reached[o] = True
    channels = np.flatnonzero(reached)
    return Change(channels, dz[channels].transpose(1, 2, 3, 0))


def fc_swap_delta(x: np.ndarray, units: int, s: int, src: tuple, dst: tuple) -> np.ndarray:
    """Step 1 for a swap inside a fc layer: the change of its sums, (n, units).

    x (n, features) is the layer's input, src = (a, i), dst = (b, j) positions in (out, in).
    """
    # Z[:, r] = sum over f of W[r, f] * x[:, f]: the weight at (a, i) adds s * x[:, i] to unit a.
    (a, i), (b, j) = src, dst
    dz = np.zeros((len(x), units), np.int64)
    dz[:, a] -= s * x[:, i]                                    # unit a loses the weight
    dz[:, b] += s * x[:, j]                                    # unit b gains it
    return dz


def fc_push(dx: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Step 3 into a fc layer: dx (n, features) changes of its input -> (n, out) changes of its
    sums, from the features that changed for some image only (w (out, features) ternary)."""
    changed = np.flatnonzero(dx.any(axis=0))
    return dx[:, changed] @ w[:, changed].T.astype(np.int64)


def flatten_delta(dh: Change, shape: tuple) -> np.ndarray:
    """The change dh of H_2, of shape ``shape`` = (n, h, w, c), as the change (n, c*h*w) of the
    flattened fc input: entry (y, x) of channel c is feature c*h*w + y*w + x (channel-major, as
    ``layers.Flatten``)."""
    n, h, w, c = shape
    dx = np.zeros((n, c, h * w), np.int64)
    dx[:, dh.channels] = dh.values.transpose(0, 3, 1, 2).reshape(n, -1, h * w)
    return dx.reshape(n, -1)


# ----------------------------------------------------------------------------------------------
# One function per kind of layer: the neighbour's logits after one swap in it.
# ----------------------------------------------------------------------------------------------

def first_conv_neighbour(cache: Cache, src: int, dst: int) -> np.ndarray:
    """Logits (n, classes) int64 of the neighbour that swaps src -> dst (flat indices) in
    layer1.0, the conv that reads the image (Section 3.2 bit swap; Algorithm 2 scores these)."""
    name = cache.names[0]
    s, a, b = moved_weight(cache.weights[name], src, dst)
    dz1 = conv_swap_delta(cache.u, cache.paddings[0], cache.z1.shape[1:3], s, a, b)
    dh1 = pool_clip_delta(cache.z1, dz1, cache.pools[0], cache.thresholds[name], cache.h1)
    # At most two channels of H_1 changed (oa, ob); every layer2.0 channel with a nonzero tap on
    # one of them changes, the others keep their cached sums.
    dz2 = conv_push(dh1, cache.weights[cache.names[1]], cache.paddings[1], cache.z2.shape[1:3])
    return _logits_from_conv2_change(cache, dz2)


def inner_conv_neighbour(cache: Cache, src: int, dst: int) -> np.ndarray:
    """Logits (n, classes) int64 of the neighbour that swaps src -> dst in layer2.0, the conv
    that reads H_1."""
    s, a, b = moved_weight(cache.weights[cache.names[1]], src, dst)
    dz2 = conv_swap_delta(cache.h1, cache.paddings[1], cache.z2.shape[1:3], s, a, b)
    return _logits_from_conv2_change(cache, dz2)


def _logits_from_conv2_change(cache: Cache, dz2: Change) -> np.ndarray:
    """The change dz2 of layer2.0's sums -> pool, clip -> the fc layer after it -> logits."""
    dh2 = pool_clip_delta(cache.z2, dz2, cache.pools[1], cache.thresholds[cache.names[1]],
                          cache.h2)
    dx3 = flatten_delta(dh2, cache.h2.shape)
    return _logits_from_fc_change(cache, fc_push(dx3, cache.weights[cache.names[2]]))


def fc_after_conv_neighbour(cache: Cache, src: int, dst: int) -> np.ndarray:
    """Logits (n, classes) int64 of the neighbour that swaps src -> dst in the fc layer that
    reads the flattened H_2: mnist's output layer ``fc``, the car's hidden layer ``fc1``."""
    w = cache.weights[cache.names[2]]
    s, a, b = moved_weight(w, src, dst)
    return _logits_from_fc_change(cache, fc_swap_delta(cache.x3, w.shape[0], s, a, b))


def _logits_from_fc_change(cache: Cache, dz3: np.ndarray) -> np.ndarray:
    """The change dz3 (n, units) of the sums of the fc layer after conv 2 -> logits."""
    if cache.z3 is None:                        # mnist: that layer is the output layer
        return cache.logits + dz3
    # car: fc1 -> HardTanh -> fc2. Only the units whose sums changed can change H_3 = clip(z3,
    # -T3, T3); a unit beyond the same threshold before and after does not.
    t = cache.thresholds[cache.names[2]]
    units = np.flatnonzero(dz3.any(axis=0))
    dh3 = np.zeros_like(dz3)
    dh3[:, units] = np.clip(cache.z3[:, units] + dz3[:, units], -t, t) - cache.h3[:, units]
    return cache.logits + fc_push(dh3, cache.weights[cache.names[3]])


def fc_after_fc_neighbour(cache: Cache, src: int, dst: int) -> np.ndarray:
    """Logits (n, classes) int64 of the neighbour that swaps src -> dst in the output layer that
    reads H_3 (car ``fc2``): two logits move, nothing else."""
    if cache.h3 is None:
        raise MinisenseError("this network has no fc layer after a fc layer (mnist: fc reads "
                             "layer2.0); use fc_after_conv_neighbour")
    w = cache.weights[cache.names[3]]
    s, a, b = moved_weight(w, src, dst)
    return cache.logits + fc_swap_delta(cache.h3, w.shape[0], s, a, b)


def neighbour_logits(cache: Cache, layer: str, src: int, dst: int) -> np.ndarray:
    """Logits (n, classes) int64 of the neighbour that swaps src -> dst in ``layer`` (its name),
    by the function for that kind of layer; equal to ``exact_logits`` of the swapped network."""
    kinds = [first_conv_neighbour, inner_conv_neighbour, fc_after_conv_neighbour,
             fc_after_fc_neighbour]
    if layer not in cache.names:
        raise MinisenseError(f"unknown layer {layer!r}; choose one of {', '.join(cache.names)}")
    return kinds[cache.names.index(layer)](cache, int(src), int(dst))


# ----------------------------------------------------------------------------------------------
# Scores, and the evaluator: the interface SENSE and the surveys use (Sections 4.2, 4.3).
# ----------------------------------------------------------------------------------------------

def score_logits(logits: np.ndarray, labels: np.ndarray, margin_clip: int) -> tuple[int, int]:
    """(correct, margin) of integer logits Z (n, classes) against labels y (n,).

    correct counts the images with argmax Z == y (the first index wins a tie); margin sums
    clip(Z[y] - max_{k != y} Z[k], -margin_clip, margin_clip) over the images.
    """
    z = np.asarray(logits, dtype=np.int64)
    rows = np.arange(len(z))
    correct = int((z.argmax(axis=1) == labels).sum())      # np.argmax takes the first of ties
    rivals = z.copy()
    rivals[rows, labels] = np.iinfo(np.int64).min           # max over k != y
    margins = np.clip(z[rows, labels] - rivals.max(axis=1), -margin_clip, margin_clip)
    return correct, int(margins.sum())


def check_scored_set(net: Network, images, labels, margin_clip) -> tuple[np.ndarray, np.ndarray]:
    """The images uint8 (n, h, w) and labels (n,) a network's neighbours are scored on, and the
    margin clip, checked (one-line errors); returns them as arrays."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or images.shape[1:] != net.input_shape or len(images) == 0:
        raise MinisenseError(f"images must be uint8 of shape (n, {net.input_shape[0]}, "
                             f"{net.input_shape[1]}) with n >= 1, got {images.dtype} "
                             f"{images.shape}")
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer) \
            or labels.min() < 0 or labels.max() >= net.num_classes:
        raise MinisenseError(f"labels must be {len(images)} integers in "
                             f"0..{net.num_classes - 1}, got {labels.dtype} {labels.shape}")
    if not 0 <= int(margin_clip) < 2 ** 31:
        raise MinisenseError(f"margin_clip must be an integer >= 0, got {margin_clip}")
    return images, labels


def check_swaps(weights: dict, layer: str, src, dst) -> tuple[np.ndarray, np.ndarray]:
    """K candidate bit swaps of ``layer`` (Section 3.2), validated: src, dst as int64 (K,).

    src must hold nonzero weights and dst zero ones (flat indices into ``weights[layer]``);
    anything else is a one-line ``MinisenseError``.
    """
    if layer not in weights:
        raise MinisenseError(f"unknown layer {layer!r}; choose one of {', '.join(weights)}")
    src, dst = np.asarray(src), np.asarray(dst)
    for name, a in (("src", src), ("dst", dst)):
        if a.ndim != 1 or not (np.issubdtype(a.dtype, np.integer) or a.size == 0):
            raise MinisenseError(f"{name} must be a 1-D integer array of flat weight indices, "
                                 f"got {a.dtype} of shape {a.shape}")
    if src.shape != dst.shape:
        raise MinisenseError(f"src holds {src.size} swaps but dst holds {dst.size}; give one dst "
                             "per src")
    flat = weights[layer].reshape(-1)
    for name, a in (("src", src), ("dst", dst)):
        bad = (a < 0) | (a >= flat.size)
        if bad.any():
            raise MinisenseError(f"{name} index {int(a[bad][0])} is out of range for layer "
                                 f"{layer} ({flat.size} weights)")
    src, dst = src.astype(np.int64), dst.astype(np.int64)
    if (flat[src] == 0).any():
        raise MinisenseError(f"src index {int(src[flat[src] == 0][0])} of layer {layer} holds a "
                             "zero weight; a bit swap moves a nonzero weight (Section 3.2)")
    if (flat[dst] != 0).any():
        raise MinisenseError(f"dst index {int(dst[flat[dst] != 0][0])} of layer {layer} holds a "
                             "nonzero weight; a bit swap moves a weight to a zero position")
    return src, dst


class DeltaEvaluator:
    """The current binary network's integers on fixed images (a ``Cache``), and its neighbours'
    scores; the textbook twin of ``minisense.fast.delta.DeltaEvaluator``, tested equal to it.

    Parameters
    ----------
    net : a binary ``Network`` (mnist or car layout); its weights and thresholds are copied
    images : ndarray of shape (n, h, w), uint8
    labels : ndarray of shape (n,), int in 0..classes-1
    margin_clip : int >= 0, each image's margin is clipped to [-margin_clip, margin_clip]

    Attributes
    ----------
    weights : dict name -> int8 array (the layer's layout), the current network
    thresholds : dict hidden layer name -> int T_l
    names : the layer names in forward order
    count, num_classes, margin_clip : n, the number of classes, the margin clip
    cached : the ``Cache`` of the current network on the images
    """

    def __init__(self, net: Network, images: np.ndarray, labels: np.ndarray, margin_clip: int):
        images, labels = check_scored_set(net, images, labels, margin_clip)
        self._template = net
        self.weights = net.ternary_weights()
        self.thresholds = dict(net.thresholds)
        self.names = list(self.weights)
        self.count, self.num_classes = len(images), net.num_classes
        self.margin_clip = int(margin_clip)
        self.images, self.labels = images, labels.astype(np.int64)
        self.refresh()

    def refresh(self) -> None:
        """Recompute the cache from ``weights`` with one full forward pass (``current_cache``)."""
        self.cached = current_cache(self.network(), self.images)

    def network(self) -> Network:
        """A binary ``Network`` with the current weights and thresholds."""
        return self._template.with_ternary(self.weights, self.thresholds)

    def logits(self) -> np.ndarray:
        """The current network's integer logits Z, (n, classes) int64."""
        return self.cached.logits.copy()

    def current_score(self) -> tuple[int, int]:
        """(correct, margin) of the current network, as ``score`` counts them."""
        return score_logits(self.cached.logits, self.labels, self.margin_clip)

    def neighbour_logits(self, layer: str, src: int, dst: int) -> np.ndarray:
        """The integer logits (n, classes) int64 of the neighbour swapping src -> dst in layer."""
        (src,), (dst,) = check_swaps(self.weights, layer, [src], [dst])
        return neighbour_logits(self.cached, layer, src, dst)

    def score(self, layer: str, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Score K candidate swaps of one layer, each applied alone to the current network.

        src, dst : (K,) int flat indices into ``weights[layer]`` (src nonzero, dst zero).
        Returns (correct, margin), (K,) int64 each (``score_logits`` of each neighbour's logits).
        The current network is unchanged.
        """
        src, dst = check_swaps(self.weights, layer, src, dst)
        correct = np.zeros(len(src), np.int64)
        margin = np.zeros(len(src), np.int64)
        for k in range(len(src)):                          # one neighbour at a time
            logits = neighbour_logits(self.cached, layer, src[k], dst[k])
            correct[k], margin[k] = score_logits(logits, self.labels, self.margin_clip)
        return correct, margin

    def accept(self, layer: str, src: int, dst: int) -> None:
        """Move to the neighbour (Algorithm 2: it becomes N^{ii+1}): apply the swap to
        ``weights`` and rebuild the cache by one full forward pass."""
        (src,), (dst,) = check_swaps(self.weights, layer, [src], [dst])
        apply_swap(self.weights[layer], src, dst)
        self.refresh()
