"""Family ensembles by exact integer inference, against a direct computation; damage."""

import numpy as np
import pytest

from minisense import checkpoint, ensemble
from minisense.errors import MinisenseError
from minisense.network import exact_logits
from minisense.runs import random_network
from minisense.swaps import apply_swap, sample_swaps


@pytest.fixture(scope="module")
def family(digits):
    """Four members of one family: a random 80% network and three others reached by bit swaps."""
    start = random_network("mnist", 80, 0, digits.train.images[:300])
    rng = np.random.default_rng(1)
    members = [start]
    for _ in range(3):
        weights = start.ternary_weights()
        for w in weights.values():
            for s, d in zip(*sample_swaps(w, 40, rng)):
                if w.reshape(-1)[s] != 0 and w.reshape(-1)[d] == 0:
                    apply_swap(w, s, d)
        net = random_network("mnist", 80, 0, digits.train.images[:300])
        net.set_ternary(weights, start.thresholds, start.last_gain)
        members.append(net)
    return members


@pytest.mark.slow
def test_summed_logits_and_vote_equal_a_direct_count(family, digits):
    images, labels = digits.test.images, digits.test.labels
    logits = np.stack([exact_logits(n, images) for n in family])
    got = ensemble.combine(ensemble.member_logits(family, images))
    assert np.array_equal(got["sum"], logits.sum(axis=0).argmax(axis=1))
    for i in range(len(labels)):
        votes = np.bincount(logits[:, i].argmax(axis=1), minlength=10)
        tied = np.flatnonzero(votes == votes.max())
        assert got["vote"][i] == tied[np.argmax(logits[:, i].sum(axis=0)[tied])]
    result = ensemble.evaluate(family, images, labels)
    assert result["members"] == [n.accuracy(images, labels) for n in family]
    assert result["sum"] == float((got["sum"] == labels).mean())
    pair = float((logits[0].argmax(1) != logits[3].argmax(1)).mean())
    assert result["disagreement"]["0-3"] == pair and len(result["disagreement"]) == 6


def test_a_vote_tie_goes_to_the_larger_summed_logits():
    # two members vote class 0, two class 2; the sums favour class 2
    logits = np.array([[[5, 0, 4]], [[5, 0, 4]], [[0, 0, 9]], [[1, 0, 9]]], dtype=np.int64)
    assert ensemble.combine(logits)["vote"][0] == 2
    assert ensemble.combine(logits)["sum"][0] == 2


def test_one_member_is_its_own_ensemble(family, digits):
    images, labels = digits.test.images, digits.test.labels
    result = ensemble.evaluate(family[:1], images, labels)
    assert result["sum"] == result["vote"] == family[0].accuracy(images, labels)


def test_members_with_other_thresholds_are_summed_as_real_logits(family, digits):
    other = random_network("mnist", 80, 5, digits.train.images[:50])
    assert not ensemble.commensurate([family[0], other])
    images = digits.test.images[:20]
    got = ensemble.member_logits([family[0], other], images)
    assert got.dtype == np.float64
    assert np.allclose(got[1], other.logit_scale * exact_logits(other, images))


def test_swap_damage_keeps_the_family_and_deletion_removes_the_fraction(family):
    net = family[0]
    rng = np.random.default_rng(0)
    swapped = ensemble.damage(net, "swaps", 500, rng)
    assert swapped.family() == net.family()
    assert any(not np.array_equal(a, b) for a, b in zip(swapped.ternary_weights().values(),
                                                         net.ternary_weights().values()))
    nonzero = sum(int(np.count_nonzero(w)) for w in net.ternary_weights().values())
    deleted = ensemble.damage(net, "delete", 0.25, rng)
    left = sum(int(np.count_nonzero(w)) for w in deleted.ternary_weights().values())
    assert left == nonzero - round(0.25 * nonzero)
    untouched = ensemble.damage(net, "swaps", 0, rng)
    assert all(np.array_equal(a, b) for a, b in zip(untouched.ternary_weights().values(),
                                                    net.ternary_weights().values()))


@pytest.mark.slow
def test_damage_curve_starts_at_the_undamaged_accuracy_and_is_reproducible(family, digits):
    images, labels = digits.test.images, digits.test.labels
    curve = ensemble.damage_curve(family, images, labels, "delete", [0, 0.5], seeds=2)
    undamaged = ensemble.evaluate(family, images, labels)
    assert curve[0]["ensemble_mean"] == undamaged["sum"]
    assert curve[0]["single_mean"] == pytest.approx(np.mean(undamaged["members"]))
    assert curve == ensemble.damage_curve(family, images, labels, "delete", [0, 0.5], seeds=2)
    with pytest.raises(MinisenseError, match="unknown damage"):
        ensemble.damage(family[0], "burn", 1, np.random.default_rng(0))


def test_members_of_two_architectures_are_a_one_line_error(family, tmp_path, digits, run,
                                                           assert_one_line_error):
    checkpoint.save(family[0], tmp_path / "a", {"dataset": "digits"})
    car = random_network("car", 80, 0, np.zeros((4, 32, 32), np.uint8))
    checkpoint.save(car, tmp_path / "b", {"dataset": "carracing"})
    with pytest.raises(MinisenseError, match="different architectures"):
        ensemble.load_members([tmp_path / "a", tmp_path / "b"])
    assert_one_line_error(run("ensemble", tmp_path / "a", tmp_path / "b"))
    assert_one_line_error(run("ensemble", tmp_path / "missing"))
