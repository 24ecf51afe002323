"""SENSE, Algorithm 2 of the paper (Sections 4.2-4.4): stochastic search and succeed.

Start from a p-SIREN network ("with backprop") or a random sparse ternary one ("without
backprop"). Each *step* samples K first neighbours (bit swaps, ``minisense.swaps``) in the
layer the schedule names, scores them all by delta evaluation (``minisense.fast.delta``), and moves
to the best one if it beats the current network. A layer's counts of -1/0/+1 never change: the
search walks inside one family.

Schedules (which layer step t perturbs):

* ``alternate`` -- every weighted layer in order, ``steps_per_layer`` steps each, the whole round
  repeated ``repeats`` times (Fig. 6: layer1.0, layer2.0, fc, 10 each, 3 times);
* ``fc`` -- only the fully-connected layers (Fig. 7);
* ``random`` -- a random layer for ``steps_per_layer`` steps (the paper: 3 neighbourhoods),
  then another random layer, until the budget ends (Fig. 8); ``layer_weights`` gives a layer
  other odds than 1.

Data discipline beyond the paper (which picked neighbours by test accuracy): the *fitness* is
computed on training images only (the first ``train_images`` of the training split, 0: all), the
*validation* split decides which network is reported as best, and the test split is only
reported. Fitness ``accuracy`` is the paper's; ``margin`` is the mean over images of the integer
margin Z_y - max_{k != y} Z_k clipped to +-``margin_clip`` (by default the standard deviation of
the starting network's logits, times ``margin_scale``), which rewards progress before a prediction
flips. The clip decides which images still count: by the end of an hour on the car about 60% of
the training frames are right by more than it and 7% wrong by more, and neither moves the fitness
any more. Accuracy is always what is reported.

Screened (racing) evaluation, beyond the paper: a step's K neighbours are first scored on a slice
of ``screen_images`` fitness images (a window of image blocks that moves on every step; a layer
may have its own slice in ``screen_by_layer``), and only the ``confirm`` best of them on the rest
(in ``confirm_stages`` pieces, dropping before each piece a neighbour that is behind the current
network on the images seen so far). Slice plus rest is exactly the whole-set score, so a move is
still accepted only when its whole-set fitness beats the current network's, and every recorded
fitness is a whole-set one; with ``screen_images`` = 0 every neighbour is scored on the whole
set, the plain Algorithm 2. Per-layer slices, schedule odds and M left at None are each
network's measured ones (``NETWORK_DEFAULTS``).

Shifted fitness, beyond the paper: with ``shift_pixels`` > 0 the fitness images are copies of
the training images each moved by up to that many pixels, drawn afresh every ``redraw_steps``
steps (:func:`stage_images`), so the climb cannot fit its images pixel by pixel; validation and
test images are never shifted. With ``subsample`` < 1 each stage scores a random share of the
training images, as a minibatch does for SGD: a step costs less, and a move must pay on images
the climb has not yet fitted. With ``mirror`` (the car), every stage also mirrors each fitness
frame left to right with probability 1/2, its label mapped to the mirrored class (left <->
right, ``minisense.data.MIRRORED_CLASSES``): a track bending left is also one bending right.
With ``class_weights`` (whole numbers) each fitness image of class c is in the set w_c times
(:func:`fitness_set`), the search's form of p-SIREN's class-weighted cross-entropy: where the
input cannot decide the label, a heavier class wins the margin.

Beyond the paper: ``anneal_temperature`` > 0 turns hill climbing into simulated annealing (its
stated future work): a worse best-neighbour is accepted with probability exp(delta / T), delta
the fitness change in units of one image's full margin or accuracy, T halving every
``anneal_half_life`` steps.

Every step's randomness comes from ``default_rng([seed, step])``, so a run killed at any moment
and resumed from its last saved state (``minisense.runs.resume``) reaches exactly the network an
uninterrupted run reaches, given the same ``max_steps``. (``budget_seconds`` is a wall-clock limit
and so naturally not reproducible across machines.) A :class:`Search` runs in memory;
``minisense.runs.SearchRun`` is the same search kept in a run folder.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from minisense.data import MIRRORED_CLASSES, Dataset, check_class_weights, majority_baseline
from minisense.errors import MinisenseError
from minisense.fast.delta import DeltaEvaluator
from minisense.fast.kernels import LANES
from minisense.network import ENGINES, Network, exact_logits, in_engine
from minisense.swaps import sample_swaps
from minisense.textbook import sense as textbook
from minisense.textbook.sense import ForwardPasses, Neighbourhood

SCHEDULES = ("alternate", "fc", "random")
FITNESSES = ("accuracy", "margin")
FITNESS_ORDER_SEED = 20191  # the fixed shuffle of the fitness images (any value serves)
# How each engine scores neighbours (module docstring).
EVALUATORS = {"fast": DeltaEvaluator, "textbook": ForwardPasses}
# Each network's settings for the fields a SenseConfig leaves at None, chosen by measurement (the
# results book, "Screened SENSE" and "Car: SENSE from random"). A first-layer swap changes most
# images' outputs, so a smaller slice ranks its neighbours. On the car, fc1 and fc2 neighbours are
# cheap on the whole set, where a slice loses many of fc1's improving ones; fc2 soon has none, so
# it is chosen less often; and confirming 10 keeps layer2.0's best neighbour where 5 often did not.
NETWORK_DEFAULTS = {
    "mnist": {"screen_by_layer": {"layer1.0": 640}, "layer_weights": {}, "confirm": 5},
    "car": {"screen_by_layer": {"layer1.0": 640, "fc1": 0, "fc2": 0},
            "layer_weights": {"fc2": 0.25}, "confirm": 10},
}
# The screening slice S an engine takes when screen_images is None: the textbook engine is the
# plain Algorithm 2 and never screens.
ENGINE_SCREEN_IMAGES = {"fast": 2560, "textbook": 0}
# Bounds of the whole-number settings, so that every count that reaches the int64 (and the fast
# tier's int32) arithmetic stays exact and a run ends: a billion steps is months of search.
MAX_NEIGHBOURS = 100_000
MAX_COUNT = 10 ** 9                      # steps, steps per layer, repeats, images
MAX_SEED = 2 ** 32 - 1
MAX_MARGIN_CLIP = 2 ** 20                # a margin sum over 2**11 images of a block fits int32
MAX_CONFIRM_STAGES = 64
MAX_CLASS_WEIGHT = 100                   # a fitness image counted at most this many times
MAX_SHIFT = 8                            # pixels: a digit keeps most of itself in the frame
# Shifted fitness images are off by default: on MNIST they gain a little per step late in a
# climb but cost more in redraws than they gain in an hour (the results book, "SENSE from random
# for an hour").
REDRAW_STEPS = 1000                      # redraw_steps left at None


@dataclass(frozen=True)
class SenseConfig:
    """The knobs of Algorithm 2 (the paper fixes only the schedules' shapes). Never changed in
    place: :meth:`resolve` returns a copy with the defaults left at None filled in."""

    schedule: str = "random"
    neighbours: int = 100                  # K, neighbours sampled per step
    fitness: str = "margin"
    steps_per_layer: int = 3               # E: 10 in Figs. 6-7, 3 in Fig. 8
    repeats: int = 3                       # R, rounds of the alternate schedule
    layers: list | None = None             # these layers ([]: all; None: all but layer1.0)
    layer_weights: dict | None = None      # random schedule: odds of a layer (1; None: measured)
    budget_seconds: float = 600.0
    max_steps: int = 0                     # 0: no limit but the budget (and the schedule)
    train_images: int = 0                  # fitness: the first n training images (0: all)
    margin_clip: int = 0                   # 0: the starting network's logit standard deviation
    margin_scale: float = 1.0              # ... times this (used when margin_clip is 0)
    anneal_temperature: float = 0.0
    anneal_half_life: float = 1000.0
    screen_images: int | None = None       # S, the screening slice (0: none; None: the engine's)
    screen_by_layer: dict | None = None    # S per layer (None: the network's measured ones)
    confirm: int | None = None             # M, confirmed on the whole set per step (None: measured)
    confirm_stages: int = 1                # > 1: confirm in pieces, dropping early losers
    seed: int = 0
    engine: str = "fast"                   # fast (delta evaluation) or textbook (forward passes)
    shift_pixels: int = 0                  # > 0: fitness images shifted up to this, drawn afresh
    redraw_steps: int | None = None        # ... every this many steps (None: REDRAW_STEPS)
    mirror: bool = False                   # half the fitness frames mirrored, drawn afresh too
    subsample: float = 1.0                 # < 1: this share of the fitness images, drawn afresh
    class_weights: list | None = None      # whole numbers: each fitness image counts w_y times

    @property
    def redraws(self) -> bool:
        """Whether the fitness images are drawn afresh every ``redraw_steps`` steps."""
        return bool(self.shift_pixels or self.mirror or self.subsample < 1)

    def resolve(self, net: Network) -> SenseConfig:
        """A copy with the fields left at None set to ``net``'s measured defaults
        (``NETWORK_DEFAULTS``) and the engine's screening slice, checked against ``net``."""
        self.check_types()
        if self.engine not in ENGINES:
            raise MinisenseError(f"unknown engine {self.engine!r}; choose one of "
                                 f"{', '.join(ENGINES)}")
        filled = {name: (value.copy() if isinstance(value, dict) else value)
                  for name, value in NETWORK_DEFAULTS[net.architecture].items()
                  if getattr(self, name) is None}
        if self.screen_images is None:
            filled["screen_images"] = ENGINE_SCREEN_IMAGES[self.engine]
        if self.redraw_steps is None:
            filled["redraw_steps"] = REDRAW_STEPS
        resolved = replace(self, **filled)
        resolved.validate(net)
        return resolved

    def validate(self, net: Network) -> None:
        """One-line errors for settings outside their ranges or not fitting ``net`` (call it on
        a resolved config)."""
        self.check_types()
        if self.schedule not in SCHEDULES:
            raise MinisenseError(f"unknown schedule {self.schedule!r}; choose one of "
                                 f"{', '.join(SCHEDULES)}")
        if self.fitness not in FITNESSES:
            raise MinisenseError(f"unknown fitness {self.fitness!r}; choose accuracy or margin")
        if None in (self.screen_images, self.confirm, self.layer_weights, self.screen_by_layer,
                    self.redraw_steps):
            raise MinisenseError("validate a resolved config: SenseConfig.resolve(net) fills "
                                 "the settings left at None")
        if self.neighbours < 1:
            raise MinisenseError(f"neighbours K must be >= 1, got {self.neighbours}")
        self._check_numbers()
        self._check_layers(net)
        if self.engine == "textbook" and (self.screen_images or self.anneal_temperature
                                          or self.confirm_stages > 1):
            raise MinisenseError("the textbook engine is the plain Algorithm 2 (every neighbour "
                                 "on the whole set, hill climbing): pass --screen-images 0 and "
                                 "no --anneal or --confirm-stages, or use --engine fast")

    def check_types(self) -> None:
        """One-line errors for a field of the wrong type or outside its bounds (``MAX_*``): a
        config read back from a run's ``config.json`` may hold anything."""
        def whole(name, low, high, none_ok=False):
            value = getattr(self, name)
            if value is None and none_ok:
                return
            # (a lower bound of None: checked by validate, with the option's own message)
            if isinstance(value, bool) or not isinstance(value, int) or value > high or (
                    low is not None and value < low):
                raise MinisenseError(f"setting {name} is {value!r}, not a whole number in "
                                     f"{low or 0}..{high}; give one in that range")

        for name in ("schedule", "fitness", "engine"):
            if not isinstance(getattr(self, name), str):
                raise MinisenseError(f"setting {name} is {getattr(self, name)!r}, not a name; "
                                     "give one of its choices")
        whole("neighbours", None, MAX_NEIGHBOURS)
        whole("steps_per_layer", 1, MAX_COUNT)
        whole("repeats", 1, MAX_COUNT)
        whole("max_steps", 0, MAX_COUNT)
        whole("train_images", 0, MAX_COUNT)
        whole("margin_clip", 0, MAX_MARGIN_CLIP)
        whole("screen_images", None, MAX_COUNT, none_ok=True)
        whole("confirm", None, MAX_NEIGHBOURS, none_ok=True)
        whole("confirm_stages", 1, MAX_CONFIRM_STAGES)
        whole("seed", 0, MAX_SEED)
        whole("shift_pixels", 0, MAX_SHIFT)
        whole("redraw_steps", 1, MAX_COUNT, none_ok=True)
        if not isinstance(self.mirror, bool):
            raise MinisenseError(f"setting mirror is {self.mirror!r}, not true or false")
        if self.class_weights is not None and not (
                isinstance(self.class_weights, list) and self.class_weights and all(
                    isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= MAX_CLASS_WEIGHT
                    for w in self.class_weights)):
            raise MinisenseError(f"setting class_weights is {self.class_weights!r}, not whole "
                                 f"numbers in 1..{MAX_CLASS_WEIGHT}, one a class (e.g. 1,2,1)")
        for name in ("budget_seconds", "anneal_temperature", "anneal_half_life", "margin_scale",
                     "subsample"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise MinisenseError(f"setting {name} is {value!r}, not a number")
        if self.layers is not None and not (isinstance(self.layers, list) and all(
                isinstance(name, str) for name in self.layers)):
            raise MinisenseError(f"setting layers is {self.layers!r}, not a list of layer names")
        for name, kind in (("layer_weights", (int, float)), ("screen_by_layer", int)):
            value = getattr(self, name)         # (the values' ranges: _check_layers)
            if value is not None and not (isinstance(value, dict) and all(
                    isinstance(k, str) and isinstance(v, kind) and not isinstance(v, bool)
                    for k, v in value.items())):
                raise MinisenseError(f"setting {name} is {value!r}, not layer names with "
                                     f"{'whole numbers' if kind is int else 'numbers'}")

    def _check_numbers(self) -> None:
        for name, value, zero_ok in (("time budget", self.budget_seconds, False),
                                     ("anneal temperature", self.anneal_temperature, True),
                                     ("anneal half-life", self.anneal_half_life, False),
                                     ("margin scale", self.margin_scale, False)):
            if not (isinstance(value, (int, float)) and 0 <= value < float("inf")
                    and (value > 0 or zero_ok)):
                raise MinisenseError(f"the {name} must be a finite number "
                                     f"{'>= 0' if zero_ok else '> 0'}, got {value!r}")
        if not 0 < self.subsample <= 1:
            raise MinisenseError(f"the subsample is the share of the fitness images scored, "
                                 f"above 0 and at most 1, got {self.subsample!r}")
        if not isinstance(self.confirm_stages, int) or self.confirm_stages < 1:
            raise MinisenseError(f"--confirm-stages must be a whole number >= 1, got "
                                 f"{self.confirm_stages!r}")
        if self.screen_images < 0 or self.confirm < 1:
            raise MinisenseError(f"screening needs --screen-images >= 0 (0: off) and --confirm "
                                 f">= 1, got {self.screen_images} and {self.confirm}")

    def _check_layers(self, net: Network) -> None:
        known = f"{', '.join(net.weighted)}"
        for option, names in (("--layer", self.layers or []),
                              ("--layer-weight", self.layer_weights),
                              ("--screen", self.screen_by_layer)):
            for name in names:
                if name not in net.weighted:
                    raise MinisenseError(f"layer {name!r} of {option} is not in the "
                                         f"{net.architecture} network; its layers are {known}")
        if not self.search_layers(net):
            raise MinisenseError(f"the {self.schedule} schedule has no layer to search among "
                                 f"{', '.join(self.search_layers(net, schedule=False))}; with "
                                 "--schedule fc choose an fc layer, or another schedule")
        for name, weight in self.layer_weights.items():
            if not (isinstance(weight, (int, float)) and 0 <= weight < float("inf")):
                raise MinisenseError(f"the weight of {name} must be a number >= 0, got "
                                     f"{weight!r}")
        if self.schedule == "random" and not any(
                self.layer_weights.get(name, 1.0) > 0 for name in self.search_layers(net)):
            raise MinisenseError("every searched layer has weight 0; give one a weight > 0")
        for name, size in self.screen_by_layer.items():
            if not isinstance(size, int) or not 0 <= size <= MAX_COUNT:
                raise MinisenseError(f"screening slice of {name} must be an integer >= 0 (0: "
                                     f"not screened) and <= {MAX_COUNT}, got {size!r}")
        for name in self.search_layers(net):
            counts = net.family()[name]
            if counts["0"] == 0 or counts["0"] == sum(counts.values()):
                raise MinisenseError(f"layer {name} has {counts['0']} zeros of "
                                     f"{sum(counts.values())} weights, so no bit swap exists; "
                                     "choose a sparsity that leaves zeros and nonzeros in it")

    def search_layers(self, net: Network, schedule: bool = True) -> list[str]:
        """The layers the search perturbs: ``layers`` ([]: all), by default all but the first
        conv layer, which then keeps its start: its steps cost many times a layer2.0 step and
        were worth less than their time (the results book). ``schedule``: only those of them
        the schedule visits (``fc``: the fully-connected ones)."""
        names = self.layers or list(net.weighted)
        if self.layers is None:
            names = names[1:]
        if schedule and self.schedule == "fc":
            names = [n for n in names if n.startswith("fc")]
        return names


def fitness_count(data, train_images: int) -> int:
    """How many training images the fitness is made of: the first ``train_images`` (0: all)."""
    total = len(data.train.labels)
    return min(train_images, total) if train_images else total


def fitness_set(data, train_images: int, class_weights: list | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """The fitness images: the first ``train_images`` of the training split (0: all of it), in a
    fixed shuffled order so that any run of blocks is a fair sample for screening (the car's
    frames come episode by episode). Whole-set scores are integer sums over images: the order
    changes none of them. With ``class_weights`` (whole numbers, one a class) each image is there
    w_y times, so accuracy and margin become their class-weighted sums, as ``class_weights``
    weight p-SIREN's cross-entropy. Returns images uint8 (n, h, w), labels (n,)."""
    n = fitness_count(data, train_images)
    images, labels = data.train.images[:n], data.train.labels[:n]
    if class_weights is not None:
        index = np.repeat(np.arange(n), np.asarray(class_weights)[labels])
        images, labels = images[index], labels[index]
    order = np.random.default_rng(FITNESS_ORDER_SEED).permutation(len(labels))
    return images[order], labels[order]


def check_inputs(net, data, config) -> None:
    """One-line errors for a search given what it cannot search: not a binary network (SENSE moves
    ternary weights: train one with p-SIREN, or start from a random one), not a dataset of the
    network's image size, not a ``SenseConfig``."""
    if not isinstance(net, Network) or not net.is_binary:
        raise MinisenseError("SENSE searches a binary (ternary-weight) network: pass one made by "
                             "p-SIREN, minisense.random_network or a checkpoint")
    if not isinstance(data, Dataset):
        raise MinisenseError(f"data is a {type(data).__name__}, not a minisense Dataset; load "
                             "one with minisense.load_dataset")
    if data.train.images.shape[1:] != tuple(net.input_shape) or \
            data.num_classes != net.num_classes:
        raise MinisenseError(f"dataset {data.name} has {data.num_classes} classes of "
                             f"{data.train.images.shape[1:]} images but the {net.architecture} "
                             f"network takes {tuple(net.input_shape)} images into "
                             f"{net.num_classes} classes; pass a network made for it")
    if not isinstance(config, SenseConfig):
        raise MinisenseError(f"config is a {type(config).__name__}, not a SenseConfig")
    if config.mirror and data.name not in MIRRORED_CLASSES:
        raise MinisenseError(f"--mirror needs classes that have mirror images (carracing: left "
                             f"<-> right); a mirrored {data.name} image is not of its class: "
                             "drop --mirror")
    check_class_weights(config.class_weights, data.num_classes, data.name)


def shifted(images: np.ndarray, pixels: int, rng: np.random.Generator) -> np.ndarray:
    """Each image moved by its own random (dy, dx) in [-pixels, pixels]^2, uncovered pixels 0
    (the background of MNIST-style images). uint8 (n, h, w) -> uint8 (n, h, w)."""
    n, h, w = images.shape
    padded = np.zeros((n, h + 2 * pixels, w + 2 * pixels), images.dtype)
    padded[:, pixels:pixels + h, pixels:pixels + w] = images
    dy, dx = rng.integers(-pixels, pixels + 1, size=(2, n))
    out = np.empty_like(images)
    for a in range(-pixels, pixels + 1):            # one slice per shift, not per image
        for b in range(-pixels, pixels + 1):
            chosen = (dy == a) & (dx == b)
            out[chosen] = padded[chosen, pixels - a:pixels - a + h, pixels - b:pixels - b + w]
    return out


def mirrored(images: np.ndarray, labels: np.ndarray, classes, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
    """Each image mirrored left to right with probability 1/2, its label then ``classes[label]``
    (the class of the mirror image). uint8 (n, h, w), (n,) -> copies of both."""
    flip = rng.random(len(labels)) < 0.5
    images, labels = images.copy(), np.asarray(labels).copy()
    images[flip] = images[flip, :, ::-1]
    labels[flip] = np.asarray(classes, labels.dtype)[labels[flip]]
    return images, labels


def subsample_size(n: int, share: float) -> int:
    """How many of ``n`` fitness images a stage scores at ``subsample`` = ``share`` (at least 1)."""
    return max(1, int(round(share * n)))


def stage_images(data, config: SenseConfig, stage: int) -> tuple[np.ndarray, np.ndarray]:
    """The fitness images of ``stage`` (steps stage*R .. (stage+1)*R - 1, R = ``redraw_steps``):
    :func:`fitness_set`; with ``subsample`` < 1 a random share of it (:func:`subsample_size`
    images, in random order); each image shifted afresh by up to ``shift_pixels`` (0: unshifted,
    every stage the same), then with ``mirror`` half of them mirrored (:func:`mirrored`). The
    share comes from ``default_rng([seed, stage, 4])``, the shifts from ``[seed, stage, 2]`` and
    the mirrors from ``[seed, stage, 3]``, so a resumed run scores the images an uninterrupted
    one does. Fresh draws every stage keep the climb from fitting the training images one by one
    (the train/validation gap, results book)."""
    images, labels = fitness_set(data, config.train_images, config.class_weights)
    if config.subsample < 1:
        rng = np.random.default_rng([config.seed, stage, 4])
        keep = rng.permutation(len(labels))[:subsample_size(len(labels), config.subsample)]
        images, labels = images[keep], labels[keep]
    if config.shift_pixels:
        rng = np.random.default_rng([config.seed, stage, 2])
        images = shifted(images, config.shift_pixels, rng)
    if config.mirror:
        rng = np.random.default_rng([config.seed, stage, 3])
        images, labels = mirrored(images, labels, MIRRORED_CLASSES[data.name], rng)
    return images, labels


def layer_at(config: SenseConfig, layers: list[str], step: int) -> str | None:
    """The layer the schedule perturbs at ``step`` (0-based), or None when the schedule is over."""
    block = step // config.steps_per_layer
    if config.schedule == "alternate":
        if block >= len(layers) * config.repeats:
            return None
        return layers[block % len(layers)]
    if config.schedule == "random":
        rng = np.random.default_rng([config.seed, block, 1])
        weights = np.array([(config.layer_weights or {}).get(name, 1.0) for name in layers])
        if (weights == weights[0]).all():                   # the paper's uniform choice
            return layers[rng.integers(len(layers))]
        return layers[rng.choice(len(layers), p=weights / weights.sum())]
    return layers[block % len(layers)]                      # fc: cycle through the fc layers


class Search:
    """A SENSE run in memory: the current network's evaluators on the fitness, validation and test
    images, the state, the best network by validation. ``step`` takes one step of Algorithm 2,
    ``run`` climbs until done; nothing is written to disk (``minisense.runs.SearchRun`` keeps a
    search in a run folder).

    After each ``step``, ``neighbourhood`` holds what it looked at: the layer, the candidate
    swaps ``src``/``dst`` (K,), their ``fitness`` (K,) and the index of the ``best``; ``history``
    holds every record (the start's first, for a search started here).
    """

    def __init__(self, net: Network, data, config: SenseConfig, start: dict | None = None):
        check_inputs(net, data, config)
        config = config.resolve(net)
        net = in_engine(net, config.engine)
        self.data, self.template = data, net
        self.layers = config.search_layers(net)
        images, labels = fitness_set(data, config.train_images, config.class_weights)
        if not config.margin_clip:
            # (on the images in their stored order: a float sum's rounding depends on it)
            spread = float(exact_logits(
                net, data.train.images[:fitness_count(data, config.train_images)]).std())
            clip = max(1, int(round(config.margin_scale * spread)))
            if clip > MAX_MARGIN_CLIP:
                raise MinisenseError(f"margin scale {config.margin_scale:g} makes the margin clip "
                                     f"{clip} (the start's logits spread {spread:.0f}), above "
                                     f"{MAX_MARGIN_CLIP}; give a smaller --margin-scale")
            config = replace(config, margin_clip=clip)
        self.config = config
        evaluator = EVALUATORS[config.engine]
        self.stage = (start or {}).get("step", 0) // config.redraw_steps
        if config.redraws:
            images, labels = stage_images(data, config, self.stage)
        self.n_train = len(labels)          # the images each fitness is scored on
        self.fit = evaluator(net, images, labels, config.margin_clip)
        self.val = evaluator(net, data.validation.images, data.validation.labels, 1)
        self.test = evaluator(net, data.test.images, data.test.labels, 1)
        self.state = dict(start) if start else {
            "step": 0, "accepted": 0, "seconds": 0.0, "evaluations": 0,
            "best_validation": self.accuracies()["validation_accuracy"], "best_step": 0}
        self.best_weights = {k: v.copy() for k, v in self.fit.weights.items()}
        self.neighbourhood: dict | None = None
        self.history = [] if start else [self.start_record()]

    # -- fitness and accuracies --------------------------------------------------------------
    def fitness(self, correct, margin) -> np.ndarray:
        """Fitness per image: accuracy in [0, 1], or mean clipped margin in [-1, 1]."""
        return textbook.fitness(correct, margin, self.n_train, self.config.fitness,
                                self.config.margin_clip)

    def accuracies(self) -> dict:
        return {"train_accuracy": self.fit.current_score()[0] / self.n_train,
                "validation_accuracy": (self.val.current_score()[0]
                                        / len(self.data.validation.labels)),
                "test_accuracy": self.test.current_score()[0] / len(self.data.test.labels)}

    def majority_baseline(self) -> dict:
        """The validation and test splits' majority-class rates, to read accuracies against."""
        return {"validation": majority_baseline(self.data.validation),
                "test": majority_baseline(self.data.test)}

    def start_record(self) -> dict:
        """The record of step 0: the starting network."""
        return {"step": 0, "layer": None, "neighbours": 0, "accepted": False,
                "fitness": float(self.fitness(*self.fit.current_score())),
                **self.accuracies(), "seconds": 0.0}

    # -- one step of Algorithm 2 -------------------------------------------------------------
    def screen_size(self, layer: str) -> int:
        """S, the screening slice of ``layer`` in images, or 0 when its neighbours all go on the
        whole set (screening off, a slice not smaller than the set, or M >= K)."""
        cfg = self.config
        size = cfg.screen_by_layer.get(layer, cfg.screen_images) if cfg.screen_images else 0
        return size if 0 < size < self.n_train and cfg.confirm < cfg.neighbours else 0

    def screened_step(self, layer: str, rng: np.random.Generator,
                      t: int) -> tuple[Neighbourhood, np.ndarray]:
        """``textbook.sense.step`` with screening (racing): all K neighbours are scored on a slice
        of S fitness images (a window of blocks that moves on every step, so each image serves as
        often), the best ``confirm`` of them by that partial fitness on the remaining images, and
        only their fitness is whole (the others are NaN). Slice + rest = the whole-set score,
        exactly: a move is judged by the same fitness as without screening. Returns the
        neighbourhood and which neighbours were confirmed (K,) bool."""
        cfg = self.config
        src, dst = sample_swaps(self.fit.weights[layer], cfg.neighbours, rng)
        current = float(self.fitness(*self.fit.current_score()))
        size = -(-self.screen_size(layer) // LANES)
        correct, margin, confirmed = self.fit.score_screened(
            layer, src, dst, screen_blocks=size, confirm=cfg.confirm, start_block=t * size,
            rank_by=cfg.fitness,
            # annealing may take a worse neighbour: none may be dropped for being worse
            stages=1 if cfg.anneal_temperature > 0 else cfg.confirm_stages)
        scores = np.where(confirmed, self.fitness(correct, margin), np.nan)
        # No confirmed neighbour (staged confirmation dropped them all as behind the current
        # network): no move.
        best = int(np.nanargmax(scores)) if confirmed.any() else -1
        accept = best >= 0 and bool(scores[best] > current)
        return Neighbourhood(layer, src, dst, scores, best, current, accept), confirmed

    def step(self) -> dict | None:
        """One step of Algorithm 2 (``textbook.sense.step``) in the layer the schedule names, or
        :meth:`screened_step` when the layer is screened; with annealing a worse best neighbour
        may be taken. Moves every evaluator, returns the step's record (None: schedule over)."""
        cfg, t = self.config, self.state["step"]
        layer = layer_at(cfg, self.layers, t)
        if layer is None:
            return None
        if cfg.redraws and t // cfg.redraw_steps != self.stage:
            self.redraw(t // cfg.redraw_steps)
        rng = np.random.default_rng([cfg.seed, t])
        if self.screen_size(layer):
            hood, confirmed = self.screened_step(layer, rng, t)
        else:
            hood = textbook.step(self.fit, layer, cfg.neighbours, rng, self.fitness)
            confirmed = np.ones(cfg.neighbours, bool)
        # The neighbourhood just looked at, for whoever draws it (Fig. 5, neighbourhood.climb).
        self.neighbourhood = {"layer": layer, "src": hood.src, "dst": hood.dst,
                              "fitness": hood.fitness, "confirmed": confirmed, "best": hood.best}
        delta = float(hood.fitness[hood.best]) - hood.current if hood.best >= 0 else -np.inf
        accept = hood.accept
        if not accept and hood.best >= 0 and cfg.anneal_temperature > 0:
            temperature = cfg.anneal_temperature * 0.5 ** (t / cfg.anneal_half_life)
            accept = rng.random() < np.exp(delta * self.n_train / max(temperature, 1e-12))
        if accept:
            for evaluator in (self.fit, self.val, self.test):
                evaluator.accept(layer, int(hood.src[hood.best]), int(hood.dst[hood.best]))
            self.state["accepted"] += 1
        self.state["step"] = t + 1
        self.state["evaluations"] += cfg.neighbours
        record = {"step": t + 1, "layer": layer, "neighbours": cfg.neighbours,
                  "confirmed": int(confirmed.sum()), "accepted": bool(accept),
                  "fitness": hood.current + (delta if accept else 0.0), **self.accuracies()}
        if accept and record["validation_accuracy"] > self.state["best_validation"]:
            self.state["best_validation"] = record["validation_accuracy"]
            self.state["best_step"] = t + 1
            self.best_weights = {k: v.copy() for k, v in self.fit.weights.items()}
        return record

    def redraw(self, stage: int) -> None:
        """Score the current network on ``stage``'s fitness images (:func:`stage_images`) from now
        on (the evaluator's ``set_images``: on MNIST the fast one reuses its gigabytes)."""
        self.fit.set_images(*stage_images(self.data, self.config, stage))
        self.stage = stage

    # -- the climb ---------------------------------------------------------------------------
    def run(self, on_step=lambda record: None) -> dict:
        """Climb until the schedule ends, ``max_steps`` or the time budget (seconds of search,
        counted across resumes); each record goes to ``history`` and ``on_step``. Returns the
        summary."""
        cfg = self.config
        started, base_seconds = time.perf_counter(), self.state["seconds"]
        while not cfg.max_steps or self.state["step"] < cfg.max_steps:
            if base_seconds + time.perf_counter() - started >= cfg.budget_seconds:
                break
            record = self.step()
            if record is None:
                break
            self.state["seconds"] = base_seconds + time.perf_counter() - started
            record["seconds"] = self.state["seconds"]
            record["evals_per_second"] = self.state["evaluations"] / max(
                self.state["seconds"], 1e-9)
            self.recorded(record)
            on_step(record)
        return self.summary()

    def recorded(self, record: dict) -> None:
        """Keep a step's record (a run folder also writes it, ``runs.SearchRun``)."""
        self.history.append(record)

    def network(self, weights: dict | None = None) -> Network:
        """The binary network of ``weights`` (default: the current network)."""
        return self.template.with_ternary(weights or self.fit.weights)

    def summary(self) -> dict:
        best = self.network(self.best_weights)
        return {"steps": self.state["step"], "accepted": self.state["accepted"],
                "evaluations": self.state["evaluations"], "seconds": self.state["seconds"],
                "evals_per_second": self.state["evaluations"] / max(self.state["seconds"], 1e-9),
                "engine": self.config.engine,
                "current": self.accuracies(), "majority_baseline": self.majority_baseline(),
                "best": {"step": self.state["best_step"],
                         "validation_accuracy": best.accuracy(self.data.validation.images,
                                                              self.data.validation.labels),
                         "test_accuracy": best.accuracy(self.data.test.images,
                                                        self.data.test.labels)}}

    def settings(self) -> dict:
        """The resolved settings, as saved beside a run (``config.json``)."""
        return asdict(self.config)
