"""First neighbourhoods: distinct swaps, surveys independent of chunking, distance-preserving
weight vectors, reproducible embeddings."""

import numpy as np
import pytest

from minisense import data, neighbourhood, sweep
from minisense.data import load_dataset
from minisense.errors import MinisenseError
from minisense.runs import random_network
from minisense.swaps import apply_swap


@pytest.fixture(scope="module")
def net():
    return random_network("mnist", 80, 3, load_dataset("digits").train.images[:200])


@pytest.mark.parametrize("count", [1, 50, 5000])
def test_first_neighbours_are_distinct_valid_swaps(count):
    w = np.zeros(120, np.int8)
    w[:10] = 1
    w[10:14] = -1                       # 14 nonzero x 106 zero = 1,484 first neighbours
    src, dst = neighbourhood.first_neighbours(w.reshape(10, 12), count, np.random.default_rng(0))
    assert len(src) == min(count, 14 * 106)
    assert len(set(zip(src.tolist(), dst.tolist()))) == len(src)
    assert (w[src] != 0).all() and (w[dst] == 0).all()
    again = neighbourhood.first_neighbours(w.reshape(10, 12), count, np.random.default_rng(0))
    assert np.array_equal(again[0], src) and np.array_equal(again[1], dst)


def test_survey_does_not_depend_on_chunks_or_on_the_other_layers(net):
    one = neighbourhood.survey(net, "digits", ["layer2.0", "fc"], 30, 5, images=100, chunk=7)
    two = neighbourhood.survey(net, "digits", ["fc"], 30, 5, images=100, chunk=250)
    for key in ("src", "dst", "accuracy"):
        assert np.array_equal(one["fc"][key], two["fc"][key])
    x, y = data.split_of("digits", None, "test", 100)
    weights = net.ternary_weights()
    k = 11                                  # one neighbour, the slow obvious way
    apply_swap(weights["layer2.0"], one["layer2.0"]["src"][k], one["layer2.0"]["dst"][k])
    swapped = sweep.network_from({**sweep.network_spec(net), "weights": weights})
    assert swapped.accuracy(x, y) == one["layer2.0"]["accuracy"][k]


def test_survey_rejects_an_unknown_layer(net):
    with pytest.raises(MinisenseError, match="layer 'fc2' is not in the mnist network"):
        neighbourhood.survey(net, "digits", ["fc2"], 3, 0)


def test_weight_vectors_keep_the_distances_of_the_full_weight_vectors():
    rng = np.random.default_rng(1)
    base = rng.choice(np.array([-1, 0, 0, 0, 1], np.int8), 400)
    rows = [[]]
    for _ in range(30):
        path = list(rows[rng.integers(len(rows))])
        full = base.copy()
        for s, d in path:
            apply_swap(full, s, d)
        s = int(rng.choice(np.flatnonzero(full)))
        d = int(rng.choice(np.flatnonzero(full == 0)))
        rows.append(path + [(s, d)])
    full = np.tile(base.astype(np.float32), (len(rows), 1))
    for r, path in enumerate(rows):
        for s, d in path:
            full[r, d], full[r, s] = full[r, s], 0
    short = neighbourhood.weight_vectors(base, rows)
    assert short.shape[1] < 400

    def distances(v):
        return np.sqrt(((v[:, None, :] - v[None, :, :]) ** 2).sum(-1))

    np.testing.assert_array_equal(distances(short), distances(full))


@pytest.mark.parametrize("method", neighbourhood.EMBEDDINGS)
def test_embedding_is_the_same_bit_for_bit_for_the_same_seed(method):
    vectors = np.random.default_rng(2).normal(size=(40, 6)).astype(np.float32)
    a = neighbourhood.embed(vectors, method, 0)
    assert a.shape == (40, 2) and np.isfinite(a).all()
    assert np.array_equal(a, neighbourhood.embed(vectors, method, 0))


def test_embedding_rejects_unknown_methods_and_too_few_networks():
    with pytest.raises(MinisenseError, match="unknown embedding 'pca'"):
        neighbourhood.embed(np.zeros((10, 2)), "pca", 0)
    with pytest.raises(MinisenseError, match="at least 5 networks"):
        neighbourhood.embed(np.zeros((3, 2)), "tsne", 0)
