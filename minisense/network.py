"""The networks of Section 3.1 in either tier: ``build_network(architecture, seed, engine)``.

The textbook ``Network`` (``minisense.textbook.network``) and its fast twin ``FastNetwork``
(``minisense.fast.network``) have the same methods and give the same results (tested equal);
``engine`` picks one for a whole run. Everything else about the networks (binarization, the
integer arithmetic, families) is defined once, in the textbook module, and re-exported here.
"""

from __future__ import annotations

import numpy as np

from minisense.errors import MinisenseError
from minisense.fast.network import FastNetwork
from minisense.textbook.network import (
    ARCHITECTURES,
    EVALUATION_BATCH,
    INPUT_SCALE,
    Network,
    binarize,
    family,
    fix_thresholds,
)

__all__ = ["ARCHITECTURES", "ENGINES", "EVALUATION_BATCH", "INPUT_SCALE", "Network",
           "binarize", "binary_network", "build_network", "exact_logits", "family",
           "fix_thresholds", "in_engine"]

# The tiers, by the name a user gives (``--engine``); the fast one is the default everywhere.
ENGINES = {"fast": FastNetwork, "textbook": Network}


def check_engine(engine: str) -> str:
    """``engine`` if it names a tier, else a one-line error."""
    if engine not in ENGINES:
        raise MinisenseError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    return engine


def build_network(architecture: str, seed: int | np.random.Generator = 0,
                  engine: str = "fast") -> Network:
    """A freshly initialised float network of the named architecture in the ``engine``'s tier
    (the same weights for a seed in either)."""
    return ENGINES[check_engine(engine)].build(architecture, seed)


def binary_network(architecture: str, weights: dict, thresholds: dict, last_gain: float,
                   engine: str = "fast") -> Network:
    """A binary network of ``weights`` (name -> ternary array), integer ``thresholds`` and
    ``last_gain`` in the ``engine``'s tier (``Network.binary``)."""
    return ENGINES[check_engine(engine)].binary(architecture, weights, thresholds, last_gain)


def in_engine(net: Network, engine: str) -> Network:
    """The binary ``net`` in the ``engine``'s tier: itself if it is of that tier already."""
    if net.engine == check_engine(engine):
        return net
    return binary_network(net.architecture, net.ternary_weights(), net.thresholds,
                          net.last_gain, engine)


def exact_logits(net: Network, images: np.ndarray, batch_size: int = EVALUATION_BATCH,
                 stop_after: str | None = None) -> np.ndarray:
    """The binary network's integer outputs Z (n, classes) int64, by its own tier
    (``minisense.textbook.network.exact_logits``; the fast tier's equals it exactly)."""
    return net.exact_logits(images, batch_size, stop_after)
