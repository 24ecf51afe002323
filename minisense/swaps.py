"""Bit swaps, neighbourhoods and families: the architecture manifold of Section 3.2.

A *first neighbour* of a sparse ternary network moves one nonzero weight, sign and all, to a zero
position of the same layer: with flat indices ``src`` (nonzero) and ``dst`` (zero) of the layer's
weight array, ``w[dst] = w[src]; w[src] = 0``. A k-th neighbour is k swaps away. Every neighbour
keeps each layer's counts of -1, 0 and +1: its *family* (the paper's example: N0 = [1,0,-1,0,1,-1]
has the neighbour N1 = [0,1,-1,0,1,-1]).

Also here: random p-sparse ternary weights of a given family, from which ``minisense.runs`` makes
the starting point of SENSE "without backprop" (Algorithm 2, initialization; Section 4.4).
"""

from __future__ import annotations

import numpy as np

from minisense.errors import MinisenseError


def sample_swaps(w: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                                np.ndarray]:
    """``count`` random first-neighbour swaps of one layer: (src, dst), int64 arrays (count,).

    src is uniform over the nonzero positions, dst uniform over the zero positions, drawn
    independently (a neighbourhood sample may repeat a swap, as the paper's random bit-swaps may).
    """
    flat = w.ravel()
    nonzero = np.flatnonzero(flat)
    zero = np.flatnonzero(flat == 0)
    if nonzero.size == 0 or zero.size == 0:
        raise MinisenseError(f"a layer of {flat.size} weights with {nonzero.size} nonzero has no "
                             "swap: every layer needs at least one zero and one nonzero weight")
    return (nonzero[rng.integers(0, nonzero.size, count)],
            zero[rng.integers(0, zero.size, count)])


def apply_swap(w: np.ndarray, src: int, dst: int) -> None:
    """Move the weight at flat ``src`` to flat ``dst`` in place (``w[dst]`` must be 0)."""
    flat = w.reshape(-1)
    if flat[src] == 0 or flat[dst] != 0:
        raise MinisenseError(f"swap {src} -> {dst} must move a nonzero weight to a zero position "
                             f"(found {flat[src]} -> {flat[dst]})")
    flat[dst], flat[src] = flat[src], 0


def random_ternary(shape: tuple, sparsity: float, rng: np.random.Generator) -> np.ndarray:
    """int8 array with round(size * sparsity / 100) zeros at random places, the rest +1 or -1
    with equal probability."""
    size = int(np.prod(shape))
    zeros = int(round(size * sparsity / 100))
    if not 0 < zeros < size:
        raise MinisenseError(f"sparsity {sparsity}% leaves a layer of {size} weights with "
                             f"{size - zeros} nonzero and {zeros} zero weights; SENSE needs at "
                             "least one of each in every layer, choose a sparsity strictly "
                             f"between {100 / size:.3g}% and {100 - 100 / size:.3g}%")
    w = np.where(rng.random(size) < 0.5, -1, 1).astype(np.int8)
    w[rng.permutation(size)[:zeros]] = 0
    return w.reshape(shape)
