"""SENSE (Algorithm 2): schedules, hill climbing, records, and exact resume after a kill."""

import json

import numpy as np
import pytest

from minisense import sense
from minisense.data import load_dataset
from minisense.errors import MinisenseError
from minisense.network import exact_logits
from minisense.sense import SenseConfig, layer_at


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def small_config(**overrides):
    base = dict(schedule="random", neighbours=20, fitness="margin", steps_per_layer=3,
                budget_seconds=600, max_steps=40, train_images=300, seed=1)
    base.update(overrides)
    return SenseConfig(**base)


def test_alternate_schedule_visits_layers_in_order_then_ends():
    cfg = SenseConfig(schedule="alternate", steps_per_layer=2, repeats=2)
    layers = ["layer1.0", "layer2.0", "fc"]
    got = [layer_at(cfg, layers, t) for t in range(13)]
    assert got == ["layer1.0"] * 2 + ["layer2.0"] * 2 + ["fc"] * 2 + \
        ["layer1.0"] * 2 + ["layer2.0"] * 2 + ["fc"] * 2 + [None]


def test_random_schedule_keeps_a_layer_for_its_block_and_depends_only_on_seed_and_step():
    cfg = SenseConfig(schedule="random", steps_per_layer=3, seed=5)
    layers = ["layer1.0", "layer2.0", "fc"]
    got = [layer_at(cfg, layers, t) for t in range(300)]
    for block in range(100):
        assert len(set(got[3 * block:3 * block + 3])) == 1
    assert set(got) == set(layers)
    assert got == [layer_at(cfg, layers, t) for t in range(300)]


def test_fc_schedule_only_touches_fully_connected_layers(digits, tmp_path):
    run = sense.start(small_config(schedule="fc", max_steps=10), tmp_path / "r", "digits",
                      sparsity=80)
    before = {k: v.copy() for k, v in run.fit.weights.items()}
    run.run()
    assert np.array_equal(before["layer1.0"], run.fit.weights["layer1.0"])
    assert np.array_equal(before["layer2.0"], run.fit.weights["layer2.0"])


def test_search_climbs_keeps_families_and_its_evaluators_agree_with_a_full_forward(digits,
                                                                                 tmp_path):
    run = sense.start(small_config(max_steps=60), tmp_path / "r", "digits", sparsity=80)
    start_net = run.network()
    start_family = start_net.family()
    start_fitness = float(run.fitness(*run.fit.current_score()))
    summary = run.run()
    assert summary["accepted"] > 0
    assert float(run.fitness(*run.fit.current_score())) > start_fitness
    net = run.network()
    assert net.family() == start_family
    for evaluator, split in [(run.val, digits.validation), (run.test, digits.test)]:
        assert np.array_equal(evaluator.logits(), exact_logits(net, split.images))
    lines = [json.loads(x) for x in (tmp_path / "r" / sense.LOG_FILE).read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(61))
    assert {"layer", "neighbours", "fitness", "train_accuracy", "validation_accuracy",
            "test_accuracy", "seconds"} <= set(lines[-1])


def test_best_network_is_chosen_by_validation_accuracy(digits, tmp_path):
    run = sense.start(small_config(max_steps=60), tmp_path / "r", "digits", sparsity=80)
    run.run()
    lines = [json.loads(x) for x in (tmp_path / "r" / sense.LOG_FILE).read_text().splitlines()]
    best = max(r["validation_accuracy"] for r in lines)
    assert run.state["best_validation"] == best
    from minisense import checkpoint
    net, meta = checkpoint.load(tmp_path / "r" / "best")
    assert net.accuracy(digits.validation.images, digits.validation.labels) == best


def test_resume_after_a_kill_reaches_exactly_the_uninterrupted_network(digits, tmp_path):
    cfg = dict(max_steps=50, fitness="accuracy", neighbours=15)
    whole = sense.start(small_config(**cfg), tmp_path / "whole", "digits", sparsity=80)
    whole.run()

    part = sense.start(small_config(**cfg), tmp_path / "part", "digits", sparsity=80)

    class Killed(Exception):
        pass

    def kill_after_some_accepts(record):
        if part.state["accepted"] >= 3 and not record["accepted"]:
            raise Killed                     # dies between saves, like kill -9 mid-step

    with pytest.raises(Killed):
        part.run(on_step=kill_after_some_accepts)
    resumed = sense.resume(tmp_path / "part")
    assert 0 < resumed.state["step"] < 50
    resumed.run()
    for name, w in whole.fit.weights.items():
        assert np.array_equal(w, resumed.fit.weights[name])
    steps = [json.loads(x)["step"] for x in
             (tmp_path / "part" / sense.LOG_FILE).read_text().splitlines()]
    assert steps == list(range(51))


@pytest.mark.parametrize("overrides,message", [
    (dict(neighbours=0), "neighbours K must be >= 1"),
    (dict(layers=["layer9"]), "layer 'layer9' is not in the mnist network"),
])
def test_bad_search_settings_are_one_line_errors(digits, tmp_path, overrides, message):
    with pytest.raises(MinisenseError, match=message):
        sense.start(small_config(**overrides), tmp_path / "r", "digits", sparsity=80)


def test_random_init_sparsity_that_leaves_no_zero_is_refused(digits, tmp_path):
    with pytest.raises(MinisenseError, match="at least one of each"):
        sense.start(small_config(), tmp_path / "r", "digits", sparsity=99.99)
