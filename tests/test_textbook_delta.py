"""The textbook DeltaEvaluator (minisense.textbook.delta) against its fast twin
(minisense.fast.delta.DeltaEvaluator, the Numba kernels) and the full forward pass
(network.exact_logits), swap by swap: integers, so equal exactly."""

import functools

import numpy as np
import pytest
from helpers import LAYERS
from threadpoolctl import threadpool_limits

from minisense.errors import MinisenseError
from minisense.fast import delta as fast
from minisense.network import build_network, exact_logits
from minisense.runs import random_network
from minisense.swaps import apply_swap, sample_swaps
from minisense.textbook import delta as ref

SWAPS_PER_LAYER = 300            # textbook against fast
FULL_FORWARD_SWAPS = 6           # textbook against the full forward pass (slow)
IMAGES = 16
MARGIN_CLIP = 20000            # the cases' margins run from -90000 to 40000: some clip
BY_LAYER = [(a, name) for a in sorted(LAYERS) for name in LAYERS[a]]


@pytest.fixture(scope="module")
def make_case(stroke_images):
    """make_case(architecture) -> (net, images, labels): a random 80%-sparse binary network
    (thresholds calibrated on the images, so part of every hidden layer saturates), its images
    and labels; built once per architecture."""
    @functools.cache
    def make(architecture):
        rng = np.random.default_rng(len(architecture))
        layout = build_network(architecture, 0)
        images = stroke_images(layout.input_shape, IMAGES, rng, noise=40)
        labels = rng.integers(0, layout.num_classes, IMAGES)
        with threadpool_limits(1):
            net = random_network(architecture, 80, 1, images)
        return net, images, labels
    return make


@pytest.fixture(scope="module")
def new_evaluators(make_case):
    """new_evaluators(architecture) -> (textbook, fast) DeltaEvaluators of the case's network:
    the two twins."""
    def make(architecture):
        net, images, labels = make_case(architecture)
        with threadpool_limits(1):
            return (ref.DeltaEvaluator(net, images, labels, MARGIN_CLIP),
                    fast.DeltaEvaluator(net, images, labels, MARGIN_CLIP))
    return make


@pytest.fixture(scope="module")
def evaluators(new_evaluators):
    """evaluators(architecture) -> the twins for the tests that do not move them (no
    ``accept``); built once."""
    return functools.cache(new_evaluators)


def swapped(net, layer, src, dst, neighbour=None, weights=None):
    """The neighbour as a whole network: ``net`` with the swap applied to a copy of its weights
    (``weights``, net's ternary weights, when given; loaded into ``neighbour`` when given)."""
    weights = {name: w.copy() for name, w in (weights or net.ternary_weights()).items()}
    apply_swap(weights[layer], src, dst)
    neighbour = neighbour or build_network(net.architecture, 0)
    neighbour.set_ternary(weights, net.thresholds, net.last_gain)
    return neighbour


def assert_twins_agree(textbook, numba):
    """Same network, same logits, same current score."""
    assert textbook.names == numba.names and textbook.thresholds == numba.thresholds
    for name in textbook.names:
        assert np.array_equal(textbook.weights[name], numba.weights[name]), name
    assert np.array_equal(textbook.logits(), numba.logits())
    assert textbook.current_score() == numba.current_score()


@pytest.mark.parametrize("architecture", sorted(LAYERS))
def test_the_evaluator_holds_the_current_network_s_exact_logits_like_its_fast_twin(
        architecture, make_case, evaluators):
    net, images, labels = make_case(architecture)
    textbook, numba = evaluators(architecture)
    assert_twins_agree(textbook, numba)
    assert (textbook.count, textbook.num_classes, textbook.margin_clip) == \
        (numba.count, numba.num_classes, numba.margin_clip)
    with threadpool_limits(1):
        full = exact_logits(net, images)
        assert np.array_equal(textbook.logits(), full)
        assert np.array_equal(exact_logits(textbook.network(), images), full)
    assert textbook.current_score() == ref.score_logits(full, labels, MARGIN_CLIP)


@pytest.mark.parametrize("architecture,layer", [   # the textbook's conv swaps take seconds
    pytest.param(*case, marks=pytest.mark.slow) if case[1] == "layer1.0" else case
    for case in BY_LAYER])
def test_score_equals_the_fast_evaluator_on_random_swaps(architecture, layer, evaluators):
    """300 random swaps of one layer, scored by both twins: the same (correct, margin); the
    textbook's state does not change, and the swaps do move the scores."""
    textbook, numba = evaluators(architecture)
    src, dst = sample_swaps(textbook.weights[layer], SWAPS_PER_LAYER,
                            np.random.default_rng(sum(map(ord, layer))))
    before = textbook.logits()
    with threadpool_limits(1):
        correct, margin = textbook.score(layer, src, dst)
    assert correct.dtype == margin.dtype == np.int64 and correct.shape == (SWAPS_PER_LAYER,)
    expected = numba.score(layer, src, dst)
    assert np.array_equal(correct, expected[0]) and np.array_equal(margin, expected[1])
    assert np.array_equal(textbook.logits(), before)
    assert (margin != textbook.current_score()[1]).sum() > SWAPS_PER_LAYER // 4


@pytest.mark.parametrize("architecture,layer", BY_LAYER)
def test_neighbour_logits_equal_the_fast_evaluator_and_the_full_forward_pass(architecture, layer,
                                                                             make_case, evaluators):
    net, images, _ = make_case(architecture)
    textbook, numba = evaluators(architecture)
    neighbour, weights = build_network(net.architecture, 0), net.ternary_weights()
    rng = np.random.default_rng(7 + sum(map(ord, layer)))
    with threadpool_limits(1):
        for a, b in zip(*sample_swaps(textbook.weights[layer], FULL_FORWARD_SWAPS, rng)):
            logits = textbook.neighbour_logits(layer, a, b)
            assert np.array_equal(logits, ref.neighbour_logits(textbook.cached, layer, a, b))
            assert np.array_equal(logits, numba.neighbour_logits(layer, a, b)), (a, b)
            full = exact_logits(swapped(net, layer, a, b, neighbour, weights), images)
            assert np.array_equal(logits, full), (a, b)


@pytest.mark.slow
@pytest.mark.parametrize("architecture", sorted(LAYERS))
def test_after_a_sequence_of_accepts_the_twins_still_agree(architecture, make_case, new_evaluators):
    """A short hill climb as SENSE makes it (Algorithm 2): score 20 swaps of each layer in turn,
    accept the best on both twins; after every move they hold the same network, logits and
    scores, and the textbook's network is the one its logits come from."""
    net, images, _ = make_case(architecture)
    textbook, numba = new_evaluators(architecture)
    rng = np.random.default_rng(11)
    with threadpool_limits(1):
        for layer in LAYERS[architecture] * 2:
            src, dst = sample_swaps(textbook.weights[layer], 20, rng)
            correct, margin = textbook.score(layer, src, dst)
            expected = numba.score(layer, src, dst)
            assert np.array_equal(correct, expected[0]) and np.array_equal(margin, expected[1])
            best = np.lexsort((-margin, -correct))[0]
            textbook.accept(layer, src[best], dst[best])
            numba.accept(layer, src[best], dst[best])
            assert_twins_agree(textbook, numba)
            assert textbook.current_score() == (correct[best], margin[best])
        assert np.array_equal(exact_logits(textbook.network(), images), textbook.logits())
    assert any(not np.array_equal(textbook.weights[name], w)
               for name, w in net.ternary_weights().items())


@pytest.mark.parametrize("architecture", sorted(LAYERS))
def test_each_step_changes_exactly_the_listed_channels_of_the_full_forward(architecture, make_case,
                                                                           evaluators):
    """A layer1.0 swap, step by step: the changes of z1, H1, z2 and H2 the textbook computes
    are the full forward's differences, and every channel it leaves out is unchanged."""
    net, images, _ = make_case(architecture)
    cache = evaluators(architecture)[0].cached
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


def test_score_logits_counts_a_tie_for_the_first_class_and_clips_each_margin():
    logits = np.array([[3, 3, 1], [0, 5, 2], [10, -10, 0], [1, 2, 9]])
    labels = np.array([0, 0, 0, 2])
    # correct: row 0 (a tie, the first index wins), rows 2 and 3; margins 0, -5, 10, 7 -> clip 4
    assert ref.score_logits(logits, labels, 4) == (3, 0 - 4 + 4 + 4)
    rng = np.random.default_rng(3)
    for _ in range(20):                           # small integers: many ties
        z, y = rng.integers(-3, 4, (50, 10)), rng.integers(0, 10, 50)
        assert ref.score_logits(z, y, 2) == fast.score_logits(z, y, 2)


@pytest.mark.parametrize("call,message", [
    (lambda e, w: e.score("fc9", [0], [1]), "unknown layer 'fc9'"),
    (lambda e, w: e.score("fc", [w["z"]], [w["z"] + 1]), "holds a zero weight"),
    (lambda e, w: e.score("fc", [w["nz"]], [w["nz"]]), "holds a nonzero weight"),
    (lambda e, w: e.score("fc", [w["nz"]], [10 ** 6]), "out of range"),
    (lambda e, w: e.score("fc", [-1], [w["z"]]), "out of range"),
    (lambda e, w: e.score("fc", [w["nz"]], [w["z"], w["z"]]), "one dst per src"),
    (lambda e, w: e.score("fc", [0.5], [1.5]), "1-D integer array"),
    (lambda e, w: e.neighbour_logits("fc", w["z"], w["z"]), "holds a zero weight"),
    (lambda e, w: e.accept("fc", w["nz"], w["nz"]), "holds a nonzero weight"),
])
def test_a_swap_that_is_not_a_bit_swap_is_the_fast_twin_s_one_line_error(call, message, evaluators):
    textbook, numba = evaluators("mnist")
    flat = textbook.weights["fc"].reshape(-1)
    where = {"nz": int(np.flatnonzero(flat)[0]), "z": int(np.flatnonzero(flat == 0)[0])}
    errors = []
    for evaluator in (textbook, numba):
        with pytest.raises(MinisenseError, match=message) as error:
            call(evaluator, where)
        errors.append(str(error.value))
    assert errors[0] == errors[1] and "\n" not in errors[0]
    assert_twins_agree(textbook, numba)                     # a refused accept moves nothing


@pytest.mark.parametrize("call,message", [
    (lambda c, w: ref.neighbour_logits(c, "fc9", 0, 1), "unknown layer 'fc9'"),
    (lambda c, w: ref.neighbour_logits(c, "fc", w["z"], w["z"] + 1), "must move a nonzero"),
    (lambda c, w: ref.neighbour_logits(c, "fc", w["nz"], w["nz"]), "must move a nonzero"),
    (lambda c, w: ref.neighbour_logits(c, "fc", w["nz"], 10 ** 6), "must move a nonzero"),
    (lambda c, w: ref.fc_after_fc_neighbour(c, w["nz"], w["z"]), "no fc layer after a fc"),
])
def test_the_plain_functions_refuse_a_swap_that_is_not_a_bit_swap_in_one_line(call, message,
                                                                              evaluators):
    cache = evaluators("mnist")[0].cached
    flat = cache.weights["fc"].reshape(-1)
    where = {"nz": int(np.flatnonzero(flat)[0]), "z": int(np.flatnonzero(flat == 0)[0])}
    with pytest.raises(MinisenseError, match=message) as error:
        call(cache, where)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("change,message", [
    (lambda n, i, y, c: (n, i.astype(np.int16), y, c), "images must be uint8"),
    (lambda n, i, y, c: (n, i, y + 10, c), "labels must be"),
    (lambda n, i, y, c: (n, i, y, -1), "margin_clip must be"),
])
def test_bad_images_labels_or_margin_clip_are_the_fast_twin_s_one_line_error(change, message,
                                                                             make_case):
    net, images, labels = make_case("mnist")
    errors = []
    for evaluator in (ref.DeltaEvaluator, fast.DeltaEvaluator):
        with pytest.raises(MinisenseError, match=message) as error:
            evaluator(*change(net, images, labels, MARGIN_CLIP))
        errors.append(str(error.value))
    assert errors[0] == errors[1] and "\n" not in errors[0]
