"""Bit swaps against the family invariants of Section 3.2; random sparse ternary networks."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minisense.errors import MinisenseError
from minisense.network import exact_logits, family
from minisense.runs import random_network
from minisense.swaps import apply_swap, random_ternary, sample_swaps


def test_the_papers_example_neighbours_are_swaps():
    n0 = np.array([1, 0, -1, 0, 1, -1], dtype=np.int8)
    for src, dst, expected in [(0, 1, [0, 1, -1, 0, 1, -1]), (4, 3, [1, 0, -1, 1, 0, -1]),
                               (5, 3, [1, 0, -1, -1, 1, 0]), (2, 1, [1, -1, 0, 0, 1, -1])]:
        w = n0.copy()
        apply_swap(w, src, dst)
        assert w.tolist() == expected


@settings(max_examples=50, deadline=None)
@given(size=st.integers(2, 60), sparsity=st.floats(1, 99), seed=st.integers(0, 2**31 - 1))
def test_swaps_keep_the_family_and_change_exactly_two_positions(size, sparsity, seed):
    rng = np.random.default_rng(seed)
    zeros = int(round(size * sparsity / 100))
    if not 0 < zeros < size:
        with pytest.raises(MinisenseError, match="at least one of each"):
            random_ternary((size,), sparsity, rng)
        return
    w = random_ternary((size,), sparsity, rng)
    assert family(w)["0"] == zeros
    for _ in range(20):                          # a walk: each swap from the current network
        (s,), (d,) = sample_swaps(w, 1, rng)
        before = w.copy()
        apply_swap(w, s, d)
        assert family(w) == family(before)
        changed = np.flatnonzero(w != before)
        assert sorted(changed) == sorted([s, d])
        assert w[d] == before[s] and w[s] == 0


def test_sampled_swaps_move_a_nonzero_to_a_zero_and_cover_both_sets():
    rng = np.random.default_rng(0)
    w = random_ternary((8, 9), 70, rng)
    src, dst = sample_swaps(w, 2000, rng)
    assert np.all(w.ravel()[src] != 0) and np.all(w.ravel()[dst] == 0)
    assert set(src) == set(np.flatnonzero(w)) and set(dst) == set(np.flatnonzero(w == 0))


def test_a_swap_onto_a_nonzero_is_refused():
    w = np.array([1, -1, 0], dtype=np.int8)
    with pytest.raises(MinisenseError, match="nonzero weight to a zero position"):
        apply_swap(w, 0, 1)


@pytest.mark.parametrize("architecture,shape", [("mnist", (28, 28)), ("car", (32, 32))])
def test_random_network_has_the_family_and_calibrated_thresholds(architecture, shape):
    images = np.random.default_rng(1).integers(0, 256, (50, *shape), dtype=np.uint8)
    net = random_network(architecture, 80, 3, images)
    for name, counts in net.family().items():
        size = net.weighted[name].weight.size
        assert counts["0"] == round(size * 0.8)
    for name, threshold in net.thresholds.items():
        z = exact_logits(net, images, stop_after=name)
        assert threshold == max(1, round(float(z.std())))
    again = random_network(architecture, 80, 3, images)
    for name, w in net.ternary_weights().items():
        assert np.array_equal(w, again.ternary_weights()[name])
