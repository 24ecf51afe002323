"""The plain NumPy delta evaluation (minisense.textbook.delta) against the Numba kernels
(minisense.fast.delta) and the full forward pass (network.exact_logits), swap by swap."""

import functools

import numpy as np
import pytest
from test_fast_delta import stroke_images
from threadpoolctl import threadpool_limits

from minisense.errors import MinisenseError
from minisense.fast.delta import DeltaEvaluator, score_logits
from minisense.network import build_network, exact_logits
from minisense.swaps import apply_swap, random_network, sample_swaps
from minisense.textbook import delta as ref

SWAPS_PER_LAYER = 300
IMAGES = 16
MARGIN_CLIP = 1000
LAYERS = {"mnist": ["layer1.0", "layer2.0", "fc"], "car": ["layer1.0", "layer2.0", "fc1", "fc2"]}


@functools.cache
def make_case(architecture):
    """A random 80%-sparse binary network (thresholds calibrated on the images, so part of every
    hidden layer saturates), its images and labels, its reference cache and its Numba evaluator;
    built once per architecture (no test changes them)."""
    rng = np.random.default_rng(len(architecture))
    layout = build_network(architecture, 0)
    images = stroke_images(layout.input_shape, IMAGES, rng, noise=40)
    labels = rng.integers(0, layout.num_classes, IMAGES)
    with threadpool_limits(1):
        net = random_network(architecture, 80, 1, images)
        cache = ref.current_cache(net, images)
    return net, images, labels, cache, DeltaEvaluator(net, images, labels, MARGIN_CLIP)


def swapped(net, layer, src, dst, neighbour=None, weights=None):
    """The neighbour as a whole network: ``net`` with the swap applied to a copy of its weights
    (``weights``, net's ternary weights, when given; loaded into ``neighbour`` when given)."""
    weights = {name: w.copy() for name, w in (weights or net.ternary_weights()).items()}
    apply_swap(weights[layer], src, dst)
    neighbour = neighbour or build_network(net.architecture, 0)
    neighbour.set_ternary(weights, net.thresholds, net.last_gain)
    return neighbour


@pytest.mark.parametrize("architecture", sorted(LAYERS))
def test_the_cache_holds_the_current_network_s_exact_logits(architecture):
    net, images, _, cache, evaluator = make_case(architecture)
    assert np.array_equal(cache.logits, exact_logits(net, images))
    assert np.array_equal(cache.logits, evaluator.logits())


@pytest.mark.parametrize("architecture,layer", [(a, name) for a in sorted(LAYERS)
                                                for name in LAYERS[a]])
def test_neighbour_logits_equal_the_numba_kernels_and_the_full_forward_pass(architecture, layer):
    """300 random swaps of one layer: the reference's logits equal the kernels' (one swap at a
    time) and those of the swapped network run from scratch; its scores equal the kernels'
    batched scores."""
    net, images, labels, cache, evaluator = make_case(architecture)
    neighbour, weights = build_network(net.architecture, 0), net.ternary_weights()
    rng = np.random.default_rng(sum(map(ord, layer)))
    src, dst = sample_swaps(cache.weights[layer], SWAPS_PER_LAYER, rng)
    before = cache.logits.copy()
    scores, moved = [], 0
    with threadpool_limits(1):
        for a, b in zip(src, dst):
            logits = ref.neighbour_logits(cache, layer, a, b)
            assert np.array_equal(logits, evaluator.neighbour_logits(layer, a, b)), (a, b)
            full = exact_logits(swapped(net, layer, a, b, neighbour, weights), images)
            assert np.array_equal(logits, full), (a, b)
            scores.append(score_logits(logits, labels, MARGIN_CLIP))
            moved += not np.array_equal(logits, before)
    correct, margin = evaluator.score(layer, src, dst)
    assert np.array_equal(np.array(scores), np.stack([correct, margin], axis=1))
    assert np.array_equal(cache.logits, before)                  # the cache is not changed
    assert moved > SWAPS_PER_LAYER // 2                           # the swaps do move the logits


@pytest.mark.parametrize("architecture", sorted(LAYERS))
def test_each_step_changes_exactly_the_listed_channels_of_the_full_forward(architecture):
    """A layer1.0 swap, step by step: the changes of z1, H1, z2 and H2 the reference computes
    are the full forward's differences, and every channel it leaves out is unchanged."""
    net, images, _, cache, _ = make_case(architecture)
    names, t = cache.names, cache.thresholds
    rng = np.random.default_rng(5)
    for a, b in zip(*sample_swaps(cache.weights[names[0]], 20, rng)):
        s, moved_from, moved_to = ref.moved_weight(cache.weights[names[0]], a, b)
        neighbour = swapped(net, names[0], a, b)
        with threadpool_limits(1):
            z1 = exact_logits(neighbour, images, stop_after=names[0])
            z2 = exact_logits(neighbour, images, stop_after=names[1])
        dz1 = ref.conv_swap_delta(cache.u, cache.paddings[0], z1.shape[1:3], s, moved_from,
                                  moved_to)
        dh1 = ref.pool_clip_delta(cache.z1, dz1, cache.pools[0], t[names[0]], cache.h1)
        dz2 = ref.conv_push(dh1, cache.weights[names[1]], cache.paddings[1], z2.shape[1:3])
        dh2 = ref.pool_clip_delta(cache.z2, dz2, cache.pools[1], t[names[1]], cache.h2)
        assert sorted(dz1.channels) == sorted({moved_from[0], moved_to[0]})
        h1 = np.clip(ref.pool(z1, cache.pools[0]), -t[names[0]], t[names[0]])
        h2 = np.clip(ref.pool(z2, cache.pools[1]), -t[names[1]], t[names[1]])
        for change, new, old in ((dz1, z1, cache.z1), (dh1, h1, cache.h1), (dz2, z2, cache.z2),
                                 (dh2, h2, cache.h2)):
            expected = new - old
            assert np.array_equal(change.values, expected[..., change.channels])
            others = np.setdiff1d(np.arange(old.shape[-1]), change.channels)
            assert not expected[..., others].any()


@pytest.mark.parametrize("call,message", [
    (lambda c, w: ref.neighbour_logits(c, "fc9", 0, 1), "unknown layer 'fc9'"),
    (lambda c, w: ref.neighbour_logits(c, "fc", w["z"], w["z"] + 1), "must move a nonzero"),
    (lambda c, w: ref.neighbour_logits(c, "fc", w["nz"], w["nz"]), "must move a nonzero"),
    (lambda c, w: ref.neighbour_logits(c, "fc", w["nz"], 10 ** 6), "must move a nonzero"),
    (lambda c, w: ref.fc_after_fc_neighbour(c, w["nz"], w["z"]), "no fc layer after a fc"),
])
def test_a_swap_that_is_not_a_bit_swap_is_a_one_line_error(call, message):
    cache = make_case("mnist")[3]
    flat = cache.weights["fc"].reshape(-1)
    where = {"nz": int(np.flatnonzero(flat)[0]), "z": int(np.flatnonzero(flat == 0)[0])}
    with pytest.raises(MinisenseError, match=message) as error:
        call(cache, where)
    assert "\n" not in str(error.value)
