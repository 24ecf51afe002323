"""Delta evaluation of bit swaps against the full forward pass (exact_logits), swap by swap."""

import numba
import numpy as np
import pytest
from helpers import LAYERS
from threadpoolctl import threadpool_limits

from minisense.errors import MinisenseError
from minisense.fast.delta import (
    LANES,
    DeltaEvaluator,
    _pieces,
    block_window,
    score_logits,
)
from minisense.fast.layers import (
    Conv2d,
    HardTanh,
    Linear,
    MaxPool2d,
    conv_weight_matrix,
    im2col,
    max_pool,
)
from minisense.network import binarize, build_network, exact_logits
from minisense.swaps import apply_swap
from minisense.textbook.sense import ForwardPasses

SWAPS_PER_NET = 500          # per layer and network; two networks per architecture: 1,000 a layer
SINGLE_SWAPS = 60            # of which through neighbour_logits, the rest in one score batch
IMAGES = 10
MARGIN_CLIP = 2 ** 30        # no clipping here; clipping is tested on its own


def balanced_sparse_binary(architecture, seed, sparsity):
    """A random sparse binary network whose every unit has as many +1 as -1 weights (give or
    take one), so that no sum is dominated by the images' mean and activations take both signs."""
    net = build_network(architecture, seed)
    rng = np.random.default_rng(seed)
    for layer in net.weighted.values():
        layer.mask = (rng.random(layer.weight.shape) >= sparsity).astype(np.float32)
        for row in layer.weight.reshape(layer.weight.shape[0], -1):
            signs = np.resize([1.0, -1.0], row.size)
            rng.shuffle(signs)
            row[:] = np.abs(row) * signs
        layer.weight *= layer.mask
    binarize(net)
    return net


def calibrate(net, images, saturated):
    """Set each threshold so that about a fraction ``saturated`` of the layer's nonzero pooled
    sums clip on ``images`` (float64 im2col arithmetic, exact for these integers)."""
    weights = net.ternary_weights()
    names = list(weights)
    x = images[..., None].astype(np.float64)
    for m in net.modules:
        if isinstance(m, Conv2d):
            n, h, w, _ = x.shape
            x = (im2col(x, m.kernel, m.kernel, m.padding) @ conv_weight_matrix(
                weights[m.name]).astype(np.float64)).reshape(n, h + 2 * m.padding - m.kernel + 1,
                                                             -1, weights[m.name].shape[0])
            name = m.name
        elif isinstance(m, Linear):
            x, name = x @ weights[m.name].T.astype(np.float64), m.name
        elif isinstance(m, MaxPool2d):
            x = max_pool(x, m.k)[0]
        elif isinstance(m, HardTanh):
            # ... but small enough for int32 delta evaluation of the next layer's sums
            following = weights[names[names.index(name) + 1]]
            limit = (2 ** 31 - 1) // ((16 if following is weights[names[-1]] else 2)
                                      * following[0].size)
            quantile = np.quantile(np.abs(x[x != 0]), 1 - saturated)
            net.thresholds[name] = int(np.clip(quantile, 1, limit))
            x = np.clip(x, -net.thresholds[name], net.thresholds[name])
        else:
            x = m.forward(x)
    return net


# Two networks per architecture: (seed, sparsity, fraction saturating, background noise). An
# 80%-sparse one on noisy stroke images where about 10% of each hidden layer saturates, and a
# 90%-sparse one on clean strokes where about half does.
CASES = {("mnist", "random"): (1, 0.8, 0.1, 40), ("mnist", "saturating"): (2, 0.9, 0.5, 0),
         ("car", "random"): (3, 0.8, 0.1, 40), ("car", "saturating"): (4, 0.9, 0.5, 0)}


@pytest.fixture(scope="module")
def make_case(stroke_images):
    """make_case(architecture, kind, count=IMAGES, seed=0) -> (net, images, labels): the network
    of CASES[architecture, kind], calibrated on ``count`` stroke images, and random labels."""
    def make(architecture, kind, count=IMAGES, seed=0):
        net_seed, sparsity, saturated, noise = CASES[architecture, kind]
        net = balanced_sparse_binary(architecture, net_seed, sparsity)
        rng = np.random.default_rng(seed)
        images = stroke_images(net.input_shape, count, rng, noise)
        labels = rng.integers(0, net.num_classes, count)
        return calibrate(net, images, saturated), images, labels
    return make


def random_swaps(weights, count, rng):
    flat = weights.reshape(-1)
    return (rng.choice(np.flatnonzero(flat), count), rng.choice(np.flatnonzero(flat == 0), count))


def accept_random_swaps(evaluator, architecture, count, rng):
    """Move ``evaluator`` by ``count`` random bit swaps, each in a random layer."""
    for _ in range(count):
        layer = LAYERS[architecture][rng.integers(len(LAYERS[architecture]))]
        src, dst = random_swaps(evaluator.weights[layer], 1, rng)
        evaluator.accept(layer, src[0], dst[0])


def swapped(net, layer, src, dst):
    weights = net.ternary_weights()
    apply_swap(weights[layer], src, dst)
    out = build_network(net.architecture, 0)
    out.set_ternary(weights, net.thresholds, net.last_gain)
    return out


@pytest.fixture(scope="module", params=sorted(CASES), ids=lambda c: "-".join(c))
def case(request, make_case):
    net, images, labels = make_case(*request.param)
    return net, images, labels, DeltaEvaluator(net, images, labels, MARGIN_CLIP)


def test_the_cache_starts_at_the_exact_logits(case):
    net, images, labels, evaluator = case
    assert np.array_equal(evaluator.logits(), exact_logits(net, images))
    assert evaluator.current_score() == score_logits(exact_logits(net, images), labels,
                                                     MARGIN_CLIP)


@pytest.mark.slow
def test_neighbour_logits_and_scores_equal_the_full_forward_for_every_layer(case):
    """Per layer: single swaps through neighbour_logits against exact_logits of the swapped
    network, and a batch through score against ForwardPasses.score; both exactly."""
    net, images, labels, evaluator = case
    rng = np.random.default_rng(7)
    before = evaluator.logits()
    distinct = []
    with threadpool_limits(1):
        for layer in LAYERS[net.architecture]:
            src, dst = random_swaps(evaluator.weights[layer], SWAPS_PER_NET, rng)
            for k in range(SINGLE_SWAPS):
                neighbour = swapped(net, layer, src[k], dst[k])
                assert np.array_equal(evaluator.neighbour_logits(layer, src[k], dst[k]),
                                      exact_logits(neighbour, images)), (layer, k)
            batch = slice(SINGLE_SWAPS, None)
            correct, margin = evaluator.score(layer, src[batch], dst[batch])
            expected = ForwardPasses(net, images, labels, MARGIN_CLIP).score(
                layer, src[batch], dst[batch])
            assert np.array_equal(correct, expected[0]) and np.array_equal(margin, expected[1])
            distinct.append(len(np.unique(margin)))
    assert np.array_equal(evaluator.logits(), before)             # the state is unchanged
    assert min(distinct) > 1                                       # the swaps do change scores


def test_score_equals_scoring_the_neighbour_logits_with_ties_and_clipped_margins(make_case):
    net, images, labels = make_case("mnist", "saturating", count=40, seed=1)
    net.thresholds = {name: 1 for name in net.thresholds}       # H in {-1, 0, 1}: many ties
    evaluator = DeltaEvaluator(net, images, labels, margin_clip=5)
    rng = np.random.default_rng(1)
    z = evaluator.logits()
    assert (np.sort(z, axis=1)[:, -1] == np.sort(z, axis=1)[:, -2]).any()    # some ties
    for layer in LAYERS["mnist"]:
        src, dst = random_swaps(evaluator.weights[layer], 20, rng)
        correct, margin = evaluator.score(layer, src, dst)
        for k in range(20):
            expected = score_logits(evaluator.neighbour_logits(layer, src[k], dst[k]), labels, 5)
            assert (correct[k], margin[k]) == expected


@pytest.mark.parametrize("architecture", ["mnist", "car"])
def test_after_hundreds_of_accepts_the_incremental_cache_equals_a_refresh(architecture, make_case):
    net, images, labels = make_case(architecture, "saturating", count=LANES + 6, seed=2)
    evaluator = DeltaEvaluator(net, images, labels, MARGIN_CLIP)
    accept_random_swaps(evaluator, architecture, 300, np.random.default_rng(2))
    incremental = {name: a.copy() for name, a in evaluator.cache().items()}
    logits = evaluator.logits()
    evaluator.refresh()
    for name, a in evaluator.cache().items():
        assert np.array_equal(incremental[name], a), name
    assert np.array_equal(logits, exact_logits(evaluator.network(), images))


@pytest.mark.parametrize("architecture", ["mnist", "car"])
def test_set_images_holds_what_a_new_evaluator_on_those_images_holds(architecture, make_case):
    """A redraw in place (shifted fitness images): after moves on the first images, every cached
    integer, the logits, the score and the neighbours' scores on the second images equal a new
    evaluator's of the same network on them; other images are refused, nothing changed."""
    net, images, labels = make_case(architecture, "random", count=LANES + 6, seed=3)
    _, others, other_labels = make_case(architecture, "random", count=LANES + 6, seed=4)
    evaluator = DeltaEvaluator(net, images, labels, MARGIN_CLIP)
    rng = np.random.default_rng(3)
    accept_random_swaps(evaluator, architecture, 40, rng)
    before = evaluator.current_score()
    evaluator.set_images(others, other_labels)
    fresh = DeltaEvaluator(evaluator.network(), others, other_labels, MARGIN_CLIP)
    for name, a in fresh.cache().items():
        assert np.array_equal(evaluator.cache()[name], a), name
    assert np.array_equal(evaluator.logits(), exact_logits(evaluator.network(), others))
    assert evaluator.current_score() == fresh.current_score() != before
    for layer in LAYERS[architecture]:
        src, dst = random_swaps(evaluator.weights[layer], 20, rng)
        assert np.array_equal(evaluator.score(layer, src, dst), fresh.score(layer, src, dst))
    with pytest.raises(MinisenseError, match="needs 70 images"):
        evaluator.set_images(others[:5], other_labels[:5])
    assert np.array_equal(evaluator.logits(), fresh.logits())


@pytest.mark.parametrize("architecture", ["mnist", "car"])
def test_accept_keeps_the_family_and_changes_exactly_two_positions(architecture, make_case):
    net, images, labels = make_case(architecture, "random", count=5)
    evaluator = DeltaEvaluator(net, images, labels, MARGIN_CLIP)
    rng = np.random.default_rng(3)
    for layer in LAYERS[architecture]:
        before = evaluator.weights[layer].copy()
        src, dst = random_swaps(before, 1, rng)
        evaluator.accept(layer, src[0], dst[0])
        after = evaluator.weights[layer]
        assert [(after == v).sum() for v in (-1, 0, 1)] == [(before == v).sum() for v in (-1, 0, 1)]
        assert np.flatnonzero(after != before).tolist() == sorted([src[0], dst[0]])
        assert after.reshape(-1)[dst[0]] == before.reshape(-1)[src[0]]
    assert evaluator.network().family() == {
        name: {"-1": int((w == -1).sum()), "0": int((w == 0).sum()), "+1": int((w == 1).sum())}
        for name, w in evaluator.weights.items()}


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["mnist", "car"])
def test_scores_over_several_blocks_are_exact_and_do_not_depend_on_the_thread_count(architecture,
                                                                                    make_case):
    net, images, labels = make_case(architecture, "random", count=2 * LANES + 6, seed=4)
    evaluator = DeltaEvaluator(net, images, labels, MARGIN_CLIP)
    rng = np.random.default_rng(4)
    threads = numba.get_num_threads()
    for layer in LAYERS[architecture]:
        src, dst = random_swaps(evaluator.weights[layer], 30, rng)
        many = evaluator.score(layer, src, dst)
        numba.set_num_threads(1)
        try:
            one = evaluator.score(layer, src, dst)
        finally:
            numba.set_num_threads(threads)
        assert np.array_equal(many[0], one[0]) and np.array_equal(many[1], one[1])
        with threadpool_limits(1):
            expected = ForwardPasses(net, images, labels, MARGIN_CLIP).score(
                layer, src[:5], dst[:5])
        assert np.array_equal(many[0][:5], expected[0])
        assert np.array_equal(many[1][:5], expected[1])


def test_an_empty_batch_scores_nothing(make_case):
    net, images, labels = make_case("car", "random", count=3)
    correct, margin = DeltaEvaluator(net, images, labels, 10).score("fc1", [], [])
    assert correct.shape == margin.shape == (0,)


@pytest.mark.parametrize("call,message", [
    (lambda e, w: e.score("fc9", [0], [1]), "unknown layer 'fc9'; choose one of layer1.0"),
    (lambda e, w: e.score("fc", w["nz"][:2], w["z"][:1]), "src holds 2 swaps but dst holds 1"),
    (lambda e, w: e.score("fc", [15680], w["z"][:1]), "src index 15680 is out of range"),
    (lambda e, w: e.score("fc", [-1], w["z"][:1]), "src index -1 is out of range"),
    (lambda e, w: e.score("fc", w["z"][:1], w["z"][1:2]), "holds a zero weight"),
    (lambda e, w: e.score("fc", w["nz"][:1], w["nz"][1:2]), "holds a nonzero weight"),
    (lambda e, w: e.score("fc", [[1]], [[2]]), "must be a 1-D integer array"),
    (lambda e, w: e.neighbour_logits("layer1.0", 0, 10 ** 6), "out of range"),
    (lambda e, w: e.accept("layer2.0", w["z2"], w["z2"] + 1), "zero weight"),
])
def test_bad_swaps_are_one_line_errors(call, message, make_case):
    net, images, labels = make_case("mnist", "random", count=3)
    evaluator = DeltaEvaluator(net, images, labels, 10)
    flat = evaluator.weights["fc"].reshape(-1)
    where = {"nz": np.flatnonzero(flat), "z": np.flatnonzero(flat == 0),
             "z2": int(np.flatnonzero(evaluator.weights["layer2.0"].reshape(-1) == 0)[0])}
    with pytest.raises(MinisenseError, match=message) as error:
        call(evaluator, where)
    assert "\n" not in str(error.value)


def test_bad_inputs_to_the_evaluator_are_one_line_errors(make_case):
    net, images, labels = make_case("mnist", "random", count=3)
    with pytest.raises(MinisenseError, match="images must be uint8 of shape"):
        DeltaEvaluator(net, images.astype(np.float32), labels, 10)
    with pytest.raises(MinisenseError, match="labels must be 3 integers in 0..9"):
        DeltaEvaluator(net, images, labels + 10, 10)
    with pytest.raises(MinisenseError, match="too large for int32"):
        net.thresholds = {name: 10 ** 6 for name in net.thresholds}
        DeltaEvaluator(net, images, labels, 10)


@pytest.mark.parametrize("start,count,total", [(0, 3, 10), (8, 4, 10), (13, 2, 10), (0, 10, 10),
                                               (5, 12, 10)])
def test_a_block_window_and_its_rest_cover_every_block_once(start, count, total):
    window, rest = block_window(start, count, total)
    covered = [b for first, last in window + rest for b in range(first, last)]
    assert sorted(covered) == list(range(total))
    assert sum(last - first for first, last in window) == min(count, total)
    assert window[0][0] == start % total


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["mnist", "car"])
def test_scores_on_block_ranges_add_up_to_the_whole_set_and_screened_ones_are_exact(architecture,
                                                                                    make_case):
    net, images, labels = make_case(architecture, "random", count=5 * LANES - 9, seed=7)
    evaluator = DeltaEvaluator(net, images, labels, 50)
    rng = np.random.default_rng(7)
    for layer in LAYERS[architecture]:
        src, dst = random_swaps(evaluator.weights[layer], 25, rng)
        whole = evaluator.score(layer, src, dst)
        window, rest = block_window(3, 2, evaluator.blocks)          # wraps: blocks 3, 4 | 0-2
        part = [evaluator.score(layer, src, dst, blocks=r) for r in (window, rest)]
        assert np.array_equal(part[0][0] + part[1][0], whole[0])
        assert np.array_equal(part[0][1] + part[1][1], whole[1])
        cur = [evaluator.current_score(blocks=r) for r in (window, rest)]
        assert tuple(np.add(cur[0], cur[1])) == evaluator.current_score()
        for rank_by in ("margin", "accuracy"):
            correct, margin, confirmed = evaluator.score_screened(layer, src, dst, 2, 4, 3,
                                                                  rank_by)
            assert confirmed.sum() == 4
            assert np.array_equal(correct[confirmed], whole[0][confirmed])
            assert np.array_equal(margin[confirmed], whole[1][confirmed])
            # the confirmed are the slice's best: none left out beats one let in
            key = part[0][1] if rank_by == "margin" else part[0][0]
            assert key[~confirmed].max() <= key[confirmed].min()


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["mnist", "car"])
def test_staged_confirmation_is_exact_for_survivors_and_drops_only_the_incumbent_s_losers(
        architecture, make_case):

    net, images, labels = make_case(architecture, "random", count=9 * LANES - 5, seed=11)
    evaluator = DeltaEvaluator(net, images, labels, 40)
    rng = np.random.default_rng(11)
    window, rest = block_window(5, 2, evaluator.blocks)
    pieces = _pieces(rest, 3)
    assert sorted(b for p in pieces for f, e in p for b in range(f, e)) == \
        sorted(b for f, e in rest for b in range(f, e))
    prefixes = [window + [r for p in pieces[:i] for r in p] for i in range(len(pieces))]
    for layer in LAYERS[architecture]:
        src, dst = random_swaps(evaluator.weights[layer], 30, rng)
        whole = evaluator.score(layer, src, dst)
        once = evaluator.score_screened(layer, src, dst, 2, 8, 5, "margin")
        correct, margin, alive = evaluator.score_screened(layer, src, dst, 2, 8, 5, "margin",
                                                          stages=3)
        assert np.array_equal(correct[alive], whole[0][alive])
        assert np.array_equal(margin[alive], whole[1][alive])
        assert not (alive & ~once[2]).any()              # survivors come from the confirmed
        for k in np.flatnonzero(once[2]):
            behind = [evaluator.score(layer, src[k:k + 1], dst[k:k + 1], blocks=p)[1][0]
                      < evaluator.current_score(blocks=p)[1] for p in prefixes]
            assert alive[k] == (not any(behind))          # dropped iff behind on some prefix
