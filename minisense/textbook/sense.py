"""SENSE, Algorithm 2 of the paper (Sections 4.2-4.3), as a plain hill climb on forward passes.

The paper's loop, line by line::

    set max-acc = A(N^0); ii = 0
    while ii < n_k:
        find networks in the neighbourhood of N^ii by random bit swaps   -> step(): sample_swaps
        evaluate the accuracy of all of them                             -> evaluator.score
        if max-acc > A(N_j) for all j: no better neighbour               -> accept is False
        else: pick a neighbour with accuracy > max-acc                   -> the best, accepted

Two choices the paper leaves open are made explicit: the *fitness* is computed on training images
(``accuracy``, the paper's, or ``margin``, the mean clipped integer margin Z_y - max_{k!=y} Z_k,
which rewards progress before a prediction flips), and of equal neighbours the first is taken.

A neighbour is scored here by applying its swap and running the whole binary network
(:class:`ForwardPasses`): obvious, and slow. ``minisense.textbook.delta.DeltaEvaluator`` and
its fast twin ``minisense.fast.delta.DeltaEvaluator`` give the same integers from a cache, with
the same methods; ``minisense.sense.Search`` runs this step with any of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from minisense.errors import MinisenseError
from minisense.swaps import apply_swap, sample_swaps
from minisense.textbook.delta import check_scored_set, score_logits
from minisense.textbook.network import Network


class ForwardPasses:
    """The current binary network on fixed images; each neighbour scored by a whole forward pass.

    Same constructor and methods as ``minisense.textbook.delta.DeltaEvaluator`` (which it is the
    oracle of): ``score``, ``current_score``, ``logits``, ``neighbour_logits``, ``accept``,
    ``network``; ``weights`` holds the current network (name -> int8 array).

    net : a binary ``Network``; images uint8 (n, h, w); labels int (n,); margin_clip int >= 0
    """

    def __init__(self, net: Network, images: np.ndarray, labels: np.ndarray, margin_clip: int):
        images, labels = check_scored_set(net, images, labels, margin_clip)
        self._template = net
        self.weights = net.ternary_weights()
        self.thresholds = dict(net.thresholds)
        self.names = list(self.weights)
        self.images, self.labels = images, np.asarray(labels, dtype=np.int64)
        self.count, self.num_classes = len(images), net.num_classes
        self.margin_clip = int(margin_clip)
        self._score = None

    def set_images(self, images: np.ndarray, labels: np.ndarray) -> None:
        """Score on other images from now on (a redraw of shifted fitness images)."""
        images, labels = check_scored_set(self._template, images, labels, self.margin_clip)
        self.images, self.labels = images, np.asarray(labels, dtype=np.int64)
        self.count, self._score = len(images), None

    def network(self, weights: dict | None = None) -> Network:
        """The binary network of ``weights`` (default: the current ones)."""
        return self._template.with_ternary(self.weights if weights is None else weights,
                                           self.thresholds)

    def logits(self) -> np.ndarray:
        """The current network's integer logits Z, (n, classes) int64."""
        return self.network().exact_logits(self.images)

    def current_score(self) -> tuple[int, int]:
        """(correct, margin) of the current network (``score_logits``)."""
        if self._score is None:                     # kept until the network moves
            self._score = score_logits(self.logits(), self.labels, self.margin_clip)
        return self._score

    def neighbour_logits(self, layer: str, src: int, dst: int) -> np.ndarray:
        """The integer logits (n, classes) int64 of the neighbour swapping src -> dst in layer."""
        if layer not in self.weights:
            raise MinisenseError(f"unknown layer {layer!r}; choose one of {', '.join(self.names)}")
        swapped = {name: w.copy() for name, w in self.weights.items()}
        apply_swap(swapped[layer], int(src), int(dst))
        return self.network(swapped).exact_logits(self.images)

    def score(self, layer: str, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray,
                                                                           np.ndarray]:
        """(correct, margin), (K,) int64 each, of the K neighbours swapping src[k] -> dst[k]
        (flat indices into ``weights[layer]``), each applied alone to the current network."""
        scores = [score_logits(self.neighbour_logits(layer, s, d), self.labels, self.margin_clip)
                  for s, d in zip(np.asarray(src).tolist(), np.asarray(dst).tolist())]
        correct, margin = np.array(scores, dtype=np.int64).reshape(-1, 2).T
        return correct, margin

    def accept(self, layer: str, src: int, dst: int) -> None:
        """Move to the neighbour: apply the swap to the current network."""
        apply_swap(self.weights[layer], int(src), int(dst))
        self._score = None


def fitness(correct, margin, count: int, kind: str, margin_clip: int):
    """A network's fitness from its scores on ``count`` images: ``accuracy``, correct / count in
    [0, 1], or ``margin``, the mean clipped margin in units of ``margin_clip``, in [-1, 1]."""
    if kind == "accuracy":
        return np.asarray(correct, dtype=np.float64) / count
    return np.asarray(margin, dtype=np.float64) / (count * margin_clip)


class Neighbourhood(NamedTuple):
    """One step's look around: the layer, the K swaps ``src``/``dst`` (K,), their ``fitness``
    (K,), the index of the ``best``, the current network's fitness and whether it moves."""

    layer: str
    src: np.ndarray
    dst: np.ndarray
    fitness: np.ndarray
    best: int
    current: float
    accept: bool


def step(evaluator, layer: str, neighbours: int, rng: np.random.Generator,
         fitness_of: Callable) -> Neighbourhood:
    """One step of Algorithm 2 in ``layer``: sample ``neighbours`` first neighbours by random bit
    swaps, score them all, and say whether the best beats the current network (the caller moves,
    ``evaluator.accept``). ``fitness_of(correct, margin)`` turns scores into fitness."""
    # "Find all networks in the local neighborhood of N^ii through random bit-swaps"
    src, dst = sample_swaps(evaluator.weights[layer], neighbours, rng)
    # "Evaluate [the] accuracy of all local neighborhood networks"
    scores = fitness_of(*evaluator.score(layer, src, dst))
    current = float(fitness_of(*evaluator.current_score()))         # max-acc
    best = int(np.argmax(scores))                                   # the first of equals
    # "if max-acc > A(N_j): no better performing neighbor; else pick N_j with A(N_j) > max-acc"
    return Neighbourhood(layer, src, dst, scores, best, current, bool(scores[best] > current))


def hill_climb(net: Network, images: np.ndarray, labels: np.ndarray, layer_of_step: Callable,
               steps: int, neighbours: int, seed: int, kind: str = "margin",
               margin_clip: int = 1, evaluator=ForwardPasses) -> tuple[list[dict], dict]:
    """Algorithm 2 from the binary ``net`` for ``steps`` steps, on images uint8 (n, h, w) and
    labels (n,): step t perturbs ``layer_of_step(t)`` (None ends the climb) with the randomness of
    ``default_rng([seed, t])``. Returns the moves taken (step, layer, src, dst, fitness) and the
    final weights."""
    scorer = evaluator(net, images, labels, margin_clip)
    moves = []
    for t in range(steps):
        layer = layer_of_step(t)
        if layer is None:
            break
        hood = step(scorer, layer, neighbours, np.random.default_rng([seed, t]),
                    lambda c, m: fitness(c, m, len(labels), kind, margin_clip))
        if hood.accept:
            src, dst = int(hood.src[hood.best]), int(hood.dst[hood.best])
            scorer.accept(layer, src, dst)
            moves.append({"step": t + 1, "layer": layer, "src": src, "dst": dst,
                          "fitness": float(hood.fitness[hood.best])})
    return moves, scorer.weights
