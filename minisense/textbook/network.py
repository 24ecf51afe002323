"""The paper's two networks (Section 3.1), their binarization and their exact integer inference.

``mnist`` (static task; also Fashion-MNIST and digits), input 28x28::

    layer1.0  conv 1->16 5x5 pad 2 -> max-pool 2 -> HardTanh     (28 -> 14)
    layer2.0  conv 16->32 5x5 pad 2 -> max-pool 2 -> HardTanh    (14 -> 7)
    fc        1568 -> 10

``car`` (dynamic task, imitation learning), input 32x32 grayscale::

    layer1.0  conv 1->32 7x7 -> max-pool 2 -> HardTanh           (32 -> 26 -> 13)
    layer2.0  conv 32->64 5x5 -> max-pool 3 -> HardTanh          (13 -> 9 -> 3)
    fc1       576 -> 100 -> HardTanh
    fc2       100 -> 3

HardTanh is monotone, so max-pooling commutes with it: pooling first and clamping the 4x (9x)
smaller result is the same function as the paper's conv -> HardTanh -> pool.

The binary network and its integer arithmetic
---------------------------------------------
After p-SIREN step 4 every weight is in {-1, 0, +1} and each layer has a fixed positive gain g_l.
In real numbers, with x = u / 255 for the uint8 image u::

    h_0 = x,   h_l = HardTanh(g_l * W_l(h_{l-1})),   logits = g_L * W_L(h_{L-1})

:func:`binarize` chooses integer *thresholds* T_0 = 255, T_l = round(T_{l-1} / g_l) >= 1 and then
fixes g_l = T_{l-1} / T_l, so with H_l = T_l * h_l everything is an integer::

    H_0 = u,   H_l = clip(W_l(H_{l-1}), -T_l, T_l),   Z = W_L(H_{L-1}),   logits = (g_L/T_{L-1}) Z

W_l(.) of integers with ternary weights is an integer sum, so :func:`exact_logits` computes Z
without rounding. The prediction is argmax Z, the first index on ties. SENSE's delta evaluation
reproduces exactly these integers.
"""

from __future__ import annotations

import contextlib

import numpy as np

from minisense.errors import MinisenseError
from minisense.textbook import layers as textbook_layers
from minisense.textbook.layers import (
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

ARCHITECTURES = ("mnist", "car")
INPUT_SCALE = 255          # T_0: uint8 pixels
# Images per batch when a whole set is evaluated: a batch's patches must fit in memory (10,000
# MNIST images at once would take gigabytes of im2col rows).
EVALUATION_BATCH = 100


def family(w: np.ndarray) -> dict[str, int]:
    """Counts of -1, 0 and +1 in a ternary array (Section 3.2: a layer's family)."""
    return {"-1": int((w == -1).sum()), "0": int((w == 0).sum()), "+1": int((w == 1).sum())}


class Network:
    """A sequential network of layers (Section 3.1), trained by p-SIREN, searched by SENSE.

    Attributes
    ----------
    architecture : "mnist" or "car"
    modules : list of layers, applied in order
    weighted : dict name -> Conv2d | Linear, in forward order (names as in the paper's figures)
    thresholds : dict name -> int, the integer HardTanh limits T_l of the hidden layers once the
        network is binary (empty before ``binarize``)
    layers : the module whose layer classes the network is built of (this tier's)
    engine : "textbook" here; ``minisense.fast.network.FastNetwork`` is the fast twin
    """

    layers = textbook_layers
    engine = "textbook"

    def __init__(self, architecture: str, modules: list, input_shape: tuple[int, int],
                 num_classes: int):
        self.architecture = architecture
        self.modules = modules
        self.input_shape = input_shape
        self.num_classes = num_classes
        self.weighted: dict[str, Weighted] = {m.name: m for m in modules if isinstance(m, Weighted)}
        self.thresholds: dict[str, int] = {}
        # The first layer's input is the image: no gradient is needed there.
        next(iter(self.weighted.values())).needs_input_grad = False

    @classmethod
    def build(cls, architecture: str, seed: int | np.random.Generator = 0) -> Network:
        """A freshly initialised float network of the named architecture, of this class."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        if architecture not in ARCHITECTURES:
            raise MinisenseError(f"unknown architecture {architecture!r}; choose one of "
                                 f"{', '.join(ARCHITECTURES)}")
        recipe = mnist_layers if architecture == "mnist" else car_layers
        modules, input_shape, num_classes = recipe(cls.layers, rng)
        return cls(architecture, modules, input_shape, num_classes)

    # -- float forward/backward (p-SIREN) ----------------------------------------------------
    @staticmethod
    def input(images: np.ndarray) -> np.ndarray:
        """images uint8 (n, h, w) -> the float32 input x = u / 255, (n, h, w, 1)."""
        return images[..., None].astype(np.float32) * np.float32(1.0 / INPUT_SCALE)

    def forward(self, images: np.ndarray) -> np.ndarray:
        """images uint8 (n, h, w) -> float32 logits (n, num_classes); caches for ``backward``."""
        x = self.input(images)
        for m in self.modules:
            x = m.forward(x)
        return x

    def backward(self, dlogits: np.ndarray) -> None:
        """Back-propagate dloss/dlogits (n, num_classes); fills each weighted layer's ``grad``."""
        d = dlogits
        for m in reversed(self.modules):
            d = m.backward(d)
            if d is None:
                break

    def batches(self):
        """The context a run of training batches goes in: nothing here (the fast twin holds
        its threads there for the whole run)."""
        return contextlib.nullcontext()

    def exact_logits(self, images: np.ndarray, batch_size: int = EVALUATION_BATCH,
                     stop_after: str | None = None) -> np.ndarray:
        """The binary network's integer outputs Z (:func:`exact_logits`)."""
        return exact_logits(self, images, batch_size, stop_after)

    def predict(self, images: np.ndarray, batch_size: int = EVALUATION_BATCH) -> np.ndarray:
        """Predicted classes (n,) int64: exact integer inference once binary, float before."""
        if self.is_binary:
            return self.exact_logits(images, batch_size).argmax(axis=1)
        return np.concatenate([self.forward(images[i:i + batch_size]).argmax(axis=1)
                               for i in range(0, len(images), batch_size)])

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        return float((self.predict(images) == labels).mean())

    # -- weights -----------------------------------------------------------------------------
    @property
    def is_binary(self) -> bool:
        return all(layer.ternary for layer in self.weighted.values())

    @property
    def last_gain(self) -> float:
        """The last layer's gain g_L: the hidden layers' gains live on in the integer
        thresholds, the last one scales the logits."""
        return list(self.weighted.values())[-1].gain

    @property
    def logit_scale(self) -> float:
        """Real logits = logit_scale * Z, the integer output (meaningful once binary)."""
        hidden = list(self.thresholds.values())
        return float(self.last_gain / (hidden[-1] if hidden else INPUT_SCALE))

    def ternary_weights(self) -> dict[str, np.ndarray]:
        """name -> int8 array of the weights in {-1, 0, +1}, in the layer's own layout."""
        if not self.is_binary:
            raise MinisenseError("the network is not binary yet; run p-SIREN step 4 (binarize)")
        return {name: layer.effective_weight().astype(np.int8)
                for name, layer in self.weighted.items()}

    def family(self) -> dict[str, dict[str, int]]:
        """Each layer's counts of -1, 0, +1 (Section 3.2: the network's family)."""
        return {name: family(w) for name, w in self.ternary_weights().items()}

    def set_ternary(self, weights: dict[str, np.ndarray], thresholds: dict[str, int],
                    last_gain: float) -> None:
        """Load ternary weights and integer thresholds (from a checkpoint or a search)."""
        names = list(self.weighted)
        for layer in self.weighted.values():
            w = np.asarray(weights[layer.name])
            layer.weight = w.astype(np.float32)
            layer.mask = (w != 0).astype(np.float32)
            layer.ternary = True
        self.thresholds = {name: int(thresholds[name]) for name in names[:-1]}
        previous = INPUT_SCALE
        for name in names[:-1]:
            self.weighted[name].gain = previous / self.thresholds[name]
            previous = self.thresholds[name]
        self.weighted[names[-1]].gain = float(last_gain)

    @classmethod
    def binary(cls, architecture: str, weights: dict[str, np.ndarray], thresholds: dict,
               last_gain: float) -> Network:
        """A binary network of this class holding ``weights`` (name -> ternary array), integer
        ``thresholds`` and ``last_gain``: the one way a network is made from ternary weights (a
        checkpoint, a neighbour, a search's best)."""
        net = cls.build(architecture, 0)
        net.set_ternary(weights, thresholds, last_gain)
        return net

    def with_ternary(self, weights: dict[str, np.ndarray], thresholds: dict | None = None,
                     last_gain: float | None = None) -> Network:
        """:meth:`binary` of this network's architecture and tier, its thresholds and last gain
        unless given."""
        return type(self).binary(self.architecture, weights,
                                 self.thresholds if thresholds is None else thresholds,
                                 self.last_gain if last_gain is None else last_gain)


def mnist_layers(layers, rng: np.random.Generator, num_classes: int = 10):
    """The static-task network of Section 3.1 from the classes of ``layers``: conv(16,5x5) ->
    pool -> conv(32,5x5) -> pool -> fc. Returns (modules, input shape, classes)."""
    return [
        layers.Conv2d("layer1.0", 1, 16, 5, 2, rng), layers.MaxPool2d(2), layers.HardTanh(),
        layers.Conv2d("layer2.0", 16, 32, 5, 2, rng), layers.MaxPool2d(2), layers.HardTanh(),
        layers.Flatten(), layers.Linear("fc", 1568, num_classes, rng),
    ], (28, 28), num_classes


def car_layers(layers, rng: np.random.Generator, num_classes: int = 3):
    """The dynamic-task network of Section 3.1: conv(32,7x7) -> pool -> conv(64,5x5) -> pool ->
    fc 576x100 -> fc 100x3, for 32x32 grayscale frames."""
    return [
        layers.Conv2d("layer1.0", 1, 32, 7, 0, rng), layers.MaxPool2d(2), layers.HardTanh(),
        layers.Conv2d("layer2.0", 32, 64, 5, 0, rng), layers.MaxPool2d(3), layers.HardTanh(),
        layers.Flatten(), layers.Linear("fc1", 576, 100, rng), layers.HardTanh(),
        layers.Linear("fc2", 100, num_classes, rng),
    ], (32, 32), num_classes


def binarize(net: Network) -> None:
    """Algorithm 1, step 4: clamp every weight to {-1, 0, +1} and fix the integer thresholds.

    Each layer's real scale is alpha_l = mean |w| of its kept weights (the least-squares scale of a
    ternary approximation with a fixed support), so its real weight becomes q = alpha_l * sign(w)
    on the mask. The float weights stay as the latent weights of the straight-through fine-tuning.
    """
    for layer in net.weighted.values():
        w = layer.effective_weight()
        kept = w[w != 0]
        alpha = float(np.abs(kept).mean()) if kept.size else 1.0
        layer.weight = w.copy()
        layer.mask = (w != 0).astype(layer.weight.dtype)
        layer.ternary = True
        layer.gain = alpha
    fix_thresholds(net)


def fix_thresholds(net: Network) -> None:
    """Round the hidden layers' real gains to integer thresholds (module docstring):
    T_0 = 255, T_l = round(T_{l-1} / g_l) >= 1, then g_l = T_{l-1} / T_l exactly."""
    previous = INPUT_SCALE
    for name in list(net.weighted)[:-1]:
        layer = net.weighted[name]
        threshold = max(1, int(round(previous / layer.gain)))
        net.thresholds[name] = threshold
        layer.gain = previous / threshold
        previous = threshold


def exact_logits(net: Network, images: np.ndarray, batch_size: int = EVALUATION_BATCH,
                 stop_after: str | None = None) -> np.ndarray:
    """The binary network's integer outputs Z (n, num_classes) int64 (module docstring):
    H_0 = u, H_l = clip(W_l H_{l-1}, -T_l, T_l), Z = W_L H_{L-1}, for uint8 images (n, h, w).

    With ``stop_after`` a layer name, returns that layer's integer sums instead (before pooling
    and clip), e.g. (n, h, w, out) for a convolution. The sums are taken in float64, exact for
    integers below 2**53 (the largest here is about 2**24), in batches of ``batch_size`` images.
    """
    weights = net.ternary_weights()
    return np.concatenate([_exact_batch(net, weights, images[i:i + batch_size], stop_after)
                           for i in range(0, len(images), batch_size)])


def _exact_batch(net: Network, weights: dict, images: np.ndarray,
                 stop_after: str | None) -> np.ndarray:
    """:func:`exact_logits` of one batch of images."""
    x = images[..., None].astype(np.float64)                  # H_0 = u, (n, h, w, 1)
    limit = None                                              # T_l of the last weighted layer
    for m in net.modules:
        if isinstance(m, Conv2d):
            n, h, w, _ = x.shape
            ho, wo = h + 2 * m.padding - m.kernel + 1, w + 2 * m.padding - m.kernel + 1
            cols = im2col(x, m.kernel, m.kernel, m.padding)
            x = (cols @ conv_weight_matrix(weights[m.name].astype(np.float64))).reshape(
                n, ho, wo, -1)
        elif isinstance(m, Linear):
            x = x @ weights[m.name].T.astype(np.float64)
        elif isinstance(m, MaxPool2d):
            x = max_pool(x, m.k)[0]
        elif isinstance(m, HardTanh):
            x = np.clip(x, -limit, limit)
        elif isinstance(m, Flatten):
            x = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
        else:
            raise MinisenseError(f"exact_logits does not know the layer {type(m).__name__}")
        if isinstance(m, Weighted):
            if m.name == stop_after:
                break
            limit = net.thresholds.get(m.name)
    return np.rint(x).astype(np.int64)
