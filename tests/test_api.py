"""The public Python API (``minisense.__all__``): every name resolves and is documented, searches
in memory write nothing and equal the folder run, configs are never changed, and bad arguments
get one-line errors."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

import minisense as ms

SEARCH_KEYS = ("step", "layer", "neighbours", "confirmed", "accepted", "fitness",
               "train_accuracy", "validation_accuracy", "test_accuracy")


@pytest.fixture(scope="module")
def start(digits):
    return ms.random_network("mnist", 80, seed=0, calibration_images=digits.train.images[:300])


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


def test_every_public_name_resolves_and_has_a_docstring():
    assert len(set(ms.__all__)) == len(ms.__all__)
    for name in ms.__all__:
        value = getattr(ms, name)
        assert name == "__version__" or (value.__doc__ or "").strip(), name
        assert name in dir(ms)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        ms.nothing  # noqa: B018


@pytest.mark.slow
def test_importing_minisense_loads_neither_numba_nor_the_fast_tier():
    code = ("import sys, minisense; print(sorted(m for m in sys.modules if m == 'numba' or "
            "m.startswith('minisense.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out.replace("'", '"')) == []


def test_search_in_memory_writes_nothing_and_equals_the_folder_run(digits, start, tmp_path,
                                                                     monkeypatch):
    config = ms.SenseConfig(max_steps=30, neighbours=10, train_images=300, budget_seconds=600)
    before = dataclasses.asdict(config)
    monkeypatch.chdir(tmp_path)
    seen = []
    best, history = ms.search(start, digits, config, on_step=seen.append)
    assert list(tmp_path.iterdir()) == []                  # nothing written
    assert dataclasses.asdict(config) == before            # the caller's config untouched
    assert seen == history[1:] and [r["step"] for r in history] == list(range(31))
    folder_best, folder_history = ms.search(start, digits, config, out=tmp_path / "run")
    written = [json.loads(line) for line in (tmp_path / "run" / "steps.jsonl").read_text()
               .splitlines()]
    for records in (folder_history, written):
        assert [[r.get(k) for k in SEARCH_KEYS] for r in records] == \
            [[r.get(k) for k in SEARCH_KEYS] for r in history]
    for name, w in best.ternary_weights().items():
        np.testing.assert_array_equal(folder_best.ternary_weights()[name], w)
    assert best.family() == start.family()
    with pytest.raises(ms.MinisenseError, match="already holds a search") as e:
        ms.search(start, digits, config, out=tmp_path / "run")
    one_line(e)


def test_search_hands_back_the_best_network_by_validation_or_the_last(digits, start):
    # 22 steps: validation peaks at step 15 and has fallen by the end, so the two differ; each
    # network's accuracy, measured afresh, is the one the history recorded for its step.
    config = ms.SenseConfig(max_steps=22, neighbours=10, train_images=300, budget_seconds=600)
    best, history = ms.search(start, digits, config)
    last, again = ms.search(start, digits, config, keep="last")
    assert [r["fitness"] for r in again] == [r["fitness"] for r in history]
    validation = [r["validation_accuracy"] for r in history]
    assert validation[-1] < max(validation)
    for net, record in ((best, history[validation.index(max(validation))]),
                        (last, history[-1])):
        for split in ("validation", "test"):
            images, labels = getattr(digits, split).images, getattr(digits, split).labels
            assert net.accuracy(images, labels) == record[f"{split}_accuracy"]
    assert last.family() == best.family() == start.family()
    with pytest.raises(ms.MinisenseError, match="keep must be one of best, last") as e:
        ms.search(start, digits, config, keep="first")
    one_line(e)


def test_configs_are_frozen():
    for config in (ms.SenseConfig(), ms.PsirenConfig()):
        with pytest.raises(dataclasses.FrozenInstanceError):
            config.seed = 3


@pytest.mark.parametrize("net, data, config, match", [
    ("float", "digits", None, "binary"),
    ("start", "arrays", None, "not a minisense Dataset"),
    ("start", "car", None, "network takes"),
    ("start", "digits", {"max_steps": 3}, "not a SenseConfig"),
])
def test_search_refuses_what_it_cannot_search(digits, start, net, data, config, match):
    nets = {"float": ms.build_network("mnist", 0), "start": start}
    car = ms.Dataset("carracing", *(ms.Split(np.zeros((4, 32, 32), np.uint8),
                                             np.zeros(4, np.int64)) for _ in range(3)), 3, "-")
    datasets = {"digits": digits, "arrays": digits.train.images, "car": car}
    with pytest.raises(ms.MinisenseError, match=match) as e:
        ms.search(nets[net], datasets[data], config)
    one_line(e)


@pytest.mark.parametrize("options, match", [
    ({"epochs": {"dense": 1}}, "each of the steps"),
    ({"epochs": {"dense": "1", "prune": 1, "sparse": 1, "binary": 1}}, "dense"),
    ({"sparsity": "90"}, "sparsity"),
    ({"batch_size": 2.5}, "batch size"),
    ({"seed": -1}, "seed -1 is outside"),
    ({"momentum": float("nan")}, "momentum"),
    ({"learn_gains": "yes"}, "learn_gains"),
])
def test_train_psiren_refuses_bad_settings_in_one_line(digits, options, match):
    with pytest.raises(ms.MinisenseError, match=match) as e:
        ms.train_psiren(digits, ms.PsirenConfig(**options))
    one_line(e)


def test_save_checkpoint_never_replaces_one_without_force(start, tmp_path):
    path = ms.save_checkpoint(start, tmp_path / "ck")
    before = path.read_bytes()
    other = ms.random_network("mnist", 80, seed=1,
                              calibration_images=np.full((8, 28, 28), 100, np.uint8))
    with pytest.raises(ms.MinisenseError, match="already exists") as e:
        ms.save_checkpoint(other, tmp_path / "ck")
    one_line(e)
    assert path.read_bytes() == before
    ms.save_checkpoint(other, tmp_path / "ck", force=True)
    loaded, _ = ms.load_checkpoint(tmp_path / "ck")
    np.testing.assert_array_equal(loaded.ternary_weights()["fc"], other.ternary_weights()["fc"])


def test_exact_logits_and_ensembles_take_arrays(digits, start):
    images, labels = digits.test.images[:50], digits.test.labels[:50]
    logits = ms.exact_logits(start, images)
    assert logits.shape == (50, 10) and logits.dtype == np.int64
    np.testing.assert_array_equal(logits.argmax(axis=1), start.predict(images))
    scores = ms.evaluate_ensemble([start, start], images, labels)
    assert scores["members"] == [start.accuracy(images, labels)] * 2
    assert scores["sum"] == scores["vote"] == start.accuracy(images, labels)
