"""SENSE (Algorithm 2): schedules, hill climbing, records, and exact resume after a kill."""

import dataclasses
import json

import numpy as np
import pytest

from minisense import checkpoint, runs, sense
from minisense.data import Dataset, Split
from minisense.errors import MinisenseError
from minisense.network import build_network, exact_logits
from minisense.runs import random_network
from minisense.sense import SenseConfig, layer_at
from minisense.textbook import sense as textbook
from minisense.textbook.delta import score_logits


def small_config(**overrides):
    base = dict(schedule="random", neighbours=20, fitness="margin", steps_per_layer=3,
                budget_seconds=600, max_steps=40, train_images=300, seed=1)
    base.update(overrides)
    return SenseConfig(**base)


def assert_stage_fitness(record, network, config, data):
    """The oracle for delta evaluation across redraws: a record's fitness and training accuracy
    are a full forward pass on the images of the stage its step belonged to. Returns the stage
    and how many images it scored."""
    stage = (record["step"] - 1) // config.redraw_steps
    images, labels = sense.stage_images(data, config, stage)
    correct, margin = score_logits(exact_logits(network, images), labels, config.margin_clip)
    assert record["fitness"] == margin / (len(labels) * config.margin_clip)
    assert record["train_accuracy"] == correct / len(labels)
    return stage, len(labels)


def assert_resumes_alike(whole, cfg, folder, stop: int) -> None:
    """A run of ``cfg`` killed after ``stop`` steps (a run stopped there) and resumed to
    ``cfg.max_steps`` takes the steps the uninterrupted run ``whole`` took."""
    part = runs.start(dataclasses.replace(cfg, max_steps=stop), folder, "digits", sparsity=80)
    part.run()
    resumed = runs.resume(folder, max_steps=cfg.max_steps)
    resumed.run()
    assert [[r.get(k) for k in RECORD_KEYS] for r in whole.history[stop + 1:]] == \
        [[r.get(k) for k in RECORD_KEYS] for r in resumed.history]


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


def test_random_schedule_with_layer_weights_picks_layers_at_their_odds():
    cfg = SenseConfig(schedule="random", steps_per_layer=1, seed=3,
                      layer_weights={"layer1.0": 0.1, "fc": 0.0})
    layers = ["layer1.0", "layer2.0", "fc"]
    got = [layer_at(cfg, layers, t) for t in range(3000)]
    assert "fc" not in got
    share = got.count("layer1.0") / len(got)
    assert 0.06 < share < 0.12                              # 0.1 / 1.1 = 0.091
    uniform = SenseConfig(schedule="random", steps_per_layer=1, seed=3,
                          layer_weights={name: 2.0 for name in layers})
    assert [layer_at(uniform, layers, t) for t in range(50)] == \
        [layer_at(SenseConfig(schedule="random", steps_per_layer=1, seed=3), layers, t)
         for t in range(50)]


@pytest.mark.slow
def test_by_default_the_first_conv_layer_keeps_its_start_and_listed_layers_are_searched(
        digits, tmp_path):
    run = runs.start(small_config(max_steps=30), tmp_path / "r", "digits", sparsity=80)
    assert run.layers == ["layer2.0", "fc"]
    first = run.fit.weights["layer1.0"].copy()
    run.run()
    assert np.array_equal(first, run.fit.weights["layer1.0"])
    run = runs.start(small_config(max_steps=1, layers=[]), tmp_path / "s", "digits", sparsity=80)
    assert run.layers == ["layer1.0", "layer2.0", "fc"]


@pytest.mark.slow
def test_fc_schedule_only_touches_fully_connected_layers(digits, tmp_path):
    run = runs.start(small_config(schedule="fc", max_steps=10), tmp_path / "r", "digits",
                      sparsity=80)
    before = {k: v.copy() for k, v in run.fit.weights.items()}
    run.run()
    assert np.array_equal(before["layer1.0"], run.fit.weights["layer1.0"])
    assert np.array_equal(before["layer2.0"], run.fit.weights["layer2.0"])


@pytest.mark.slow
def test_search_climbs_keeps_families_and_its_evaluators_agree_with_a_full_forward(digits,
                                                                                 tmp_path):
    run = runs.start(small_config(max_steps=60), tmp_path / "r", "digits", sparsity=80)
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
    lines = [json.loads(x) for x in (tmp_path / "r" / runs.LOG_FILE).read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(61))
    assert {"layer", "neighbours", "fitness", "train_accuracy", "validation_accuracy",
            "test_accuracy", "seconds"} <= set(lines[-1])


@pytest.mark.slow
def test_best_network_is_chosen_by_validation_accuracy(digits, tmp_path):
    run = runs.start(small_config(max_steps=60), tmp_path / "r", "digits", sparsity=80)
    run.run()
    lines = [json.loads(x) for x in (tmp_path / "r" / runs.LOG_FILE).read_text().splitlines()]
    best = max(r["validation_accuracy"] for r in lines)
    assert run.state["best_validation"] == best
    net, meta = checkpoint.load(tmp_path / "r" / "best")
    assert net.accuracy(digits.validation.images, digits.validation.labels) == best


@pytest.mark.slow
@pytest.mark.parametrize("cfg", [
    dict(max_steps=50, fitness="accuracy", neighbours=15),
    dict(max_steps=50, neighbours=15, train_images=600, screen_images=128,      # screened
         screen_by_layer={"layer1.0": 192}, confirm=2, layers=[]),
], ids=["whole-set", "screened"])
def test_resume_after_a_kill_reaches_exactly_the_uninterrupted_network(digits, tmp_path, cfg):
    whole = runs.start(small_config(**cfg), tmp_path / "whole", "digits", sparsity=80)
    whole.run()

    part = runs.start(small_config(**cfg), tmp_path / "part", "digits", sparsity=80)

    class Killed(Exception):
        pass

    def kill_after_some_accepts(record):
        if part.state["accepted"] >= 3 and not record["accepted"]:
            raise Killed                     # dies between saves, like kill -9 mid-step

    with pytest.raises(Killed):
        part.run(on_step=kill_after_some_accepts)
    resumed = runs.resume(tmp_path / "part")
    assert 0 < resumed.state["step"] < 50
    resumed.run()
    for name, w in whole.fit.weights.items():
        assert np.array_equal(w, resumed.fit.weights[name])
    steps = [json.loads(x)["step"] for x in
             (tmp_path / "part" / runs.LOG_FILE).read_text().splitlines()]
    assert steps == list(range(51))


@pytest.mark.slow
@pytest.mark.parametrize("overrides,message", [
    (dict(neighbours=0), "neighbours K must be >= 1"),
    (dict(layers=["layer9"]), "layer 'layer9' of --layer is not in the mnist network"),
    (dict(confirm=0), "--confirm >= 1"),
    (dict(screen_images=-5), "--screen-images >= 0"),
    (dict(screen_by_layer={"fc9": 10}), "layer 'fc9' of --screen is not in the mnist network"),
    (dict(engine="textbook", screen_images=128), "the textbook engine is the plain Algorithm 2"),
    (dict(engine="textbook", anneal_temperature=1.0), "pass --screen-images 0 and no --anneal"),
    (dict(engine="gpu"), "unknown engine 'gpu'"),
    (dict(screen_by_layer={"fc": -1}), "screening slice of fc must be an integer >= 0"),
    (dict(layer_weights={"fc": -1.0}), "the weight of fc must be a number >= 0"),
    (dict(layer_weights={name: 0.0 for name in ("layer1.0", "layer2.0", "fc")}),
     "every searched layer has weight 0"),
])
def test_bad_search_settings_are_one_line_errors(digits, tmp_path, overrides, message):
    with pytest.raises(MinisenseError, match=message):
        runs.start(small_config(**overrides), tmp_path / "r", "digits", sparsity=80)


@pytest.mark.parametrize("architecture", ["mnist", "car"])
def test_settings_left_at_none_take_the_network_s_measured_defaults(architecture):
    shape = build_network(architecture, 0).input_shape
    net = random_network(architecture, 80, 0, np.full((8, *shape), 100, np.uint8))
    asked = SenseConfig()
    config = asked.resolve(net)
    assert asked == SenseConfig()                          # the caller's config is untouched
    assert config.screen_by_layer == sense.NETWORK_DEFAULTS[architecture]["screen_by_layer"]
    assert config.layer_weights == sense.NETWORK_DEFAULTS[architecture]["layer_weights"]
    assert config.screen_images == 2560
    assert SenseConfig(engine="textbook").resolve(net).screen_images == 0
    config.screen_by_layer["layer1.0"] = 1                 # a copy: the table stays as it is
    assert sense.NETWORK_DEFAULTS[architecture]["screen_by_layer"]["layer1.0"] == 640
    given = SenseConfig(screen_by_layer={}, layer_weights={"layer1.0": 0.5}).resolve(net)
    assert given.screen_by_layer == {} and given.layer_weights == {"layer1.0": 0.5}


def test_random_init_sparsity_that_leaves_no_zero_is_refused(digits, tmp_path):
    with pytest.raises(MinisenseError, match="at least one of each"):
        runs.start(small_config(), tmp_path / "r", "digits", sparsity=99.99)


@pytest.mark.slow
@pytest.mark.parametrize("fitness", ["margin", "accuracy"])
def test_unscreened_search_is_the_textbook_hill_climb_on_whole_forward_passes(digits, tmp_path,
                                                                             fitness):
    """The fast search without screening takes the moves of ``textbook.sense.hill_climb``: each
    step's neighbours scored by a whole forward pass, the best taken if it beats the current."""
    cfg = small_config(max_steps=24, neighbours=12, train_images=200, fitness=fitness,
                       screen_images=0, layers=[])
    run = runs.start(cfg, tmp_path / "r", "digits", sparsity=80)
    start = run.network()
    moves = []
    run.run(on_step=lambda r: moves.append(r) if r["accepted"] else None)
    expected, weights = textbook.hill_climb(
        start, digits.train.images[:200], digits.train.labels[:200],
        lambda t: layer_at(run.config, run.layers, t), 24, run.config.neighbours,
        run.config.seed, fitness, run.config.margin_clip)
    assert len(expected) > 3
    assert [(m["step"], m["layer"]) for m in moves] == [(m["step"], m["layer"]) for m in expected]
    for name, w in weights.items():
        assert np.array_equal(run.fit.weights[name], w)


RECORD_KEYS = ("step", "layer", "neighbours", "confirmed", "accepted", "fitness",
               "train_accuracy", "validation_accuracy", "test_accuracy")


@pytest.mark.slow
@pytest.mark.parametrize("fitness", ["margin", "accuracy"])
def test_the_fast_and_the_textbook_engine_write_the_same_run_record_for_record(digits, tmp_path,
                                                                              fitness):
    """Both tiers behind one interface: the same run folder, the same records (all but the
    seconds), the same current and best networks, exactly (integer arithmetic)."""
    folders = {}
    for engine in ("fast", "textbook"):
        cfg = small_config(max_steps=15, neighbours=10, train_images=150, fitness=fitness,
                           screen_images=0, layers=[], engine=engine)
        run = runs.start(cfg, tmp_path / engine, "digits", sparsity=80)
        assert run.template.engine == engine
        run.run()
        folders[engine] = tmp_path / engine
    records = {engine: [[r.get(k) for k in RECORD_KEYS] for r in
                        map(json.loads, (folder / runs.LOG_FILE).read_text().splitlines())]
               for engine, folder in folders.items()}
    assert len(records["fast"]) == 16 and any(r[4] for r in records["fast"])
    assert records["fast"] == records["textbook"]
    for part in ("current", "best"):
        fast, _ = checkpoint.load(folders["fast"] / part)
        plain, _ = checkpoint.load(folders["textbook"] / part)
        for name, w in fast.ternary_weights().items():
            assert np.array_equal(w, plain.ternary_weights()[name])
    saved = {e: json.loads((f / "config.json").read_text()) for e, f in folders.items()}
    assert saved["textbook"] == {**saved["fast"], "engine": "textbook"}


@pytest.mark.slow
def test_a_search_in_memory_writes_nothing_and_gives_the_folder_run_s_records(digits, tmp_path,
                                                                             monkeypatch):
    cfg = small_config(max_steps=20, neighbours=10, train_images=200)
    net, data = runs.initial_network(cfg.seed, "digits", sparsity=80)
    monkeypatch.chdir(tmp_path / "..")
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    memory = sense.Search(net, data, cfg)
    summary = memory.run()
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before
    folder = runs.start(cfg, tmp_path / "r", "digits", sparsity=80)
    assert folder.run() ["steps"] == summary["steps"] == 20
    written = [json.loads(x) for x in (tmp_path / "r" / runs.LOG_FILE).read_text().splitlines()]
    assert [[r[k] for k in RECORD_KEYS if k in r] for r in memory.history] == \
        [[r[k] for k in RECORD_KEYS if k in r] for r in written]


@pytest.mark.slow
def test_screened_search_records_whole_set_fitness_and_keeps_the_family(digits, tmp_path):
    cfg = small_config(max_steps=40, neighbours=20, train_images=600, screen_images=128,
                       screen_by_layer={}, confirm=3, fitness="margin")
    run = runs.start(cfg, tmp_path / "r", "digits", sparsity=80)
    family = run.network().family()
    images, labels = digits.train.images[:600], digits.train.labels[:600]

    checked = []

    def check(record):
        if record["step"] % 5 == 0 or record["accepted"]:
            correct, margin = score_logits(exact_logits(run.network(), images), labels,
                                           run.config.margin_clip)
            assert record["fitness"] == margin / (600 * run.config.margin_clip)
            assert record["train_accuracy"] == correct / 600
            checked.append(record["step"])
        assert record["confirmed"] == 3

    summary = run.run(on_step=check)
    assert summary["accepted"] > 0 and len(checked) > 10
    assert run.network().family() == family
    hood = run.neighbourhood
    assert hood["confirmed"].sum() == 3 and np.isnan(hood["fitness"][~hood["confirmed"]]).all()


@pytest.mark.slow
def test_staged_confirmation_moves_only_on_whole_set_gains_and_may_find_no_candidate(digits,
                                                                                    tmp_path):
    cfg = small_config(max_steps=80, neighbours=20, train_images=0, screen_images=128,
                       screen_by_layer={}, confirm=3, confirm_stages=4, fitness="margin")
    run = runs.start(cfg, tmp_path / "r", "digits", sparsity=80)
    records = []
    run.run(on_step=records.append)
    assert any(r["confirmed"] == 0 for r in records)         # every candidate fell behind
    assert all(not r["accepted"] for r in records if r["confirmed"] == 0)
    fitness = [records[0]["fitness"]] + [r["fitness"] for r in records]
    assert all(b >= a for a, b in zip(fitness, fitness[1:]))  # a hill climb on the whole set
    images, labels = digits.train.images, digits.train.labels

    margin = score_logits(exact_logits(run.network(), images), labels, run.config.margin_clip)[1]
    assert records[-1]["fitness"] == margin / (len(labels) * run.config.margin_clip)


@pytest.mark.slow
def test_a_layer_is_screened_on_its_own_slice_only_when_that_is_smaller_than_the_set(digits,
                                                                                     tmp_path):
    cfg = small_config(max_steps=1, train_images=600, screen_images=128, confirm=3,
                       screen_by_layer={"layer1.0": 64, "fc": 0})
    run = runs.start(cfg, tmp_path / "r", "digits", sparsity=80)
    sizes = {name: run.screen_size(name) for name in ("layer1.0", "layer2.0", "fc")}
    assert sizes == {"layer1.0": 64, "layer2.0": 128, "fc": 0}
    run.config = dataclasses.replace(run.config, screen_images=0)   # off means off everywhere
    assert run.screen_size("layer1.0") == 0
    run.config = dataclasses.replace(run.config, screen_images=128, confirm=20)   # M >= K
    assert run.screen_size("layer2.0") == 0
    cfg = small_config(max_steps=1, train_images=100, screen_images=128, confirm=3)
    run = runs.start(cfg, tmp_path / "s", "digits", sparsity=80)
    assert run.screen_size("layer2.0") == 0


@pytest.mark.slow
def test_unscreened_search_replays_the_committed_fig7_run_record_for_record(tmp_path):
    """The search without screening is the search that made reference_outputs/fig7: the same
    moves, fitness and accuracies at every one of its 90 steps (fc only, so it is quick)."""
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "reference_outputs" / "fig7" / "sense"
    saved = json.loads((folder / "config.json").read_text())
    try:
        net, data = runs.initial_network(saved["seed"], "mnist", sparsity=90)
    except MinisenseError as e:                    # no MNIST here: nothing to replay against
        pytest.skip(str(e))
    run = runs.SearchRun(net, data, SenseConfig(**{"screen_images": 0, **saved}), tmp_path / "r")
    run.run()
    keys = ("step", "layer", "accepted", "fitness", "train_accuracy", "validation_accuracy",
            "test_accuracy")
    ours = [json.loads(x) for x in (tmp_path / "r" / runs.LOG_FILE).read_text().splitlines()]
    committed = [json.loads(x) for x in (folder / runs.LOG_FILE).read_text().splitlines()]
    assert len(ours) == len(committed) == 91
    assert [[r[k] for k in keys] for r in ours] == [[r[k] for k in keys] for r in committed]


# -- shifted fitness images, drawn afresh every stage ----------------------------------------------

def test_shifted_moves_each_image_within_its_range_and_fills_with_zeros():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (200, 6, 5)).astype(np.uint8)        # no zero pixel: visible
    out = sense.shifted(images, 2, np.random.default_rng(7))
    dy, dx = np.random.default_rng(7).integers(-2, 3, size=(2, 200))
    for i in range(200):                     # direct oracle: pixel by pixel
        want = np.zeros((6, 5), np.uint8)
        for r in range(6):
            for c in range(5):
                if 0 <= r - dy[i] < 6 and 0 <= c - dx[i] < 5:
                    want[r, c] = images[i, r - dy[i], c - dx[i]]
        assert np.array_equal(out[i], want), i
    assert len({(a, b) for a, b in zip(dy, dx)}) == 25 and out.dtype == np.uint8


def test_stage_images_depend_on_seed_and_stage_only_and_zero_shift_is_the_fitness_set(digits):
    cfg = small_config(shift_pixels=1, train_images=300)
    a, labels = sense.stage_images(digits, cfg, 3)
    assert np.array_equal(a, sense.stage_images(digits, cfg, 3)[0])
    assert not np.array_equal(a, sense.stage_images(digits, cfg, 4)[0])
    plain, plain_labels = sense.fitness_set(digits, 300)
    assert np.array_equal(labels, plain_labels) and not np.array_equal(a, plain)
    off = dataclasses.replace(cfg, shift_pixels=0)
    assert all(np.array_equal(x, y) for x, y in zip(sense.stage_images(digits, off, 5),
                                                     (plain, plain_labels)))


@pytest.mark.slow
def test_with_shift_off_a_search_is_bit_for_bit_the_search_without_the_setting(digits, tmp_path):
    records = []
    for name, cfg in (("default", small_config(max_steps=30)),
                      ("off", small_config(max_steps=30, shift_pixels=0, redraw_steps=7,
                                           mirror=False))):
        run = runs.start(cfg, tmp_path / name, "digits", sparsity=80)
        run.run()
        records.append([[r.get(k) for k in RECORD_KEYS] for r in run.history])
    assert records[0] == records[1]


@pytest.mark.slow
def test_shifted_stages_score_exactly_their_images_and_resume_across_a_redraw(digits, tmp_path):
    cfg = small_config(max_steps=24, neighbours=10, train_images=200, shift_pixels=2,
                       redraw_steps=8, screen_images=0)
    whole = runs.start(cfg, tmp_path / "whole", "digits", sparsity=80)
    seen = []

    def check(record):
        stage, scored = assert_stage_fitness(record, whole.network(), whole.config, digits)
        assert scored == 200
        seen.append(stage)

    whole.run(on_step=check)
    assert seen == [0] * 8 + [1] * 8 + [2] * 8 and whole.stage == 2
    part = runs.start(dataclasses.replace(cfg, max_steps=11), tmp_path / "part", "digits",
                      sparsity=80)
    part.run()
    resumed = runs.resume(tmp_path / "part", max_steps=24)
    assert resumed.stage == 1
    resumed.run()
    for name, w in whole.fit.weights.items():
        assert np.array_equal(w, resumed.fit.weights[name])
    assert [[r.get(k) for k in RECORD_KEYS] for r in whole.history[12:]] == \
        [[r.get(k) for k in RECORD_KEYS] for r in resumed.history]


@pytest.mark.slow
def test_shifted_stages_take_the_same_moves_on_the_textbook_engine(tmp_path):
    histories = {}
    for engine in ("fast", "textbook"):
        cfg = small_config(max_steps=6, neighbours=4, train_images=60, shift_pixels=1,
                           redraw_steps=3, screen_images=0, layers=["fc"], engine=engine)
        run = runs.start(cfg, tmp_path / engine, "digits", sparsity=80)
        run.run()
        histories[engine] = [[r.get(k) for k in RECORD_KEYS] for r in run.history]
    assert any(r[4] for r in histories["fast"][4:])           # a move after the redraw
    assert histories["fast"] == histories["textbook"]


# -- mirrored fitness frames (the car) ------------------------------------------------------------

@pytest.fixture(scope="module")
def striped_car():
    """A synthetic carracing dataset: 32x32 frames whose bright column sits left of, at or right
    of the centre for classes left, straight+gas and right (so a mirror swaps left and right)."""
    rng = np.random.default_rng(5)

    def split(n):
        labels = rng.integers(0, 3, n)
        images = rng.integers(0, 60, (n, 32, 32)).astype(np.uint8)
        for i, label in enumerate(labels):
            column = (8, 16, 23)[label] + rng.integers(-2, 3)
            images[i, :, column - 1:column + 1] = 220
        return Split(images, labels.astype(np.int64))

    return Dataset("carracing", split(120), split(40), split(40), 3, "synthetic")


def test_mirrored_flips_about_half_the_images_and_maps_their_labels():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (300, 4, 5)).astype(np.uint8)
    labels = rng.integers(0, 3, 300)
    before = images.copy(), labels.copy()
    out, out_labels = sense.mirrored(images, labels, (2, 1, 0), np.random.default_rng(9))
    flip = np.random.default_rng(9).random(300) < 0.5
    for i in range(300):                     # direct oracle: column by column
        want = np.array([[images[i, r, 4 - c] if flip[i] else images[i, r, c] for c in range(5)]
                         for r in range(4)], np.uint8)
        assert np.array_equal(out[i], want), i
        assert out_labels[i] == ((2, 1, 0)[labels[i]] if flip[i] else labels[i]), i
    assert 100 < flip.sum() < 200 and out.dtype == np.uint8
    assert np.array_equal(images, before[0]) and np.array_equal(labels, before[1])  # untouched


def test_mirrored_stages_depend_on_seed_and_stage_and_leave_shifts_as_they_were(striped_car):
    cfg = small_config(shift_pixels=1, train_images=0)
    both = dataclasses.replace(cfg, mirror=True)
    a, a_labels = sense.stage_images(striped_car, both, 3)
    b, b_labels = sense.stage_images(striped_car, both, 3)
    assert np.array_equal(a, b) and np.array_equal(a_labels, b_labels)
    assert not np.array_equal(a_labels, sense.stage_images(striped_car, both, 4)[1])
    shifted_only, labels = sense.stage_images(striped_car, cfg, 3)
    flip = np.random.default_rng([cfg.seed, 3, 3]).random(len(labels)) < 0.5
    assert np.array_equal(a[flip], shifted_only[flip][:, :, ::-1])     # the shift, then mirror
    assert np.array_equal(a[~flip], shifted_only[~flip])
    assert np.array_equal(a_labels, np.where(flip, 2 - labels, labels))


def test_mirrored_stages_score_exactly_their_frames_and_labels_on_both_tiers(striped_car):
    """Delta evaluation stays exact when a redraw changes the labels as well as the images:
    every record's fitness is a full forward pass on its stage's frames; and the textbook tier
    takes the same steps."""
    net = random_network("car", 80, 0, striped_car.train.images)
    histories = {}
    for engine in ("fast", "textbook"):
        cfg = small_config(max_steps=12, neighbours=6, train_images=0, mirror=True,
                           redraw_steps=4, screen_images=0, engine=engine)
        search = sense.Search(net, striped_car, cfg)
        histories[engine] = []
        for _ in range(12):
            record = search.step()
            _, scored = assert_stage_fitness(record, search.fit.network(), search.config,
                                             striped_car)
            assert scored == 120
            histories[engine].append([record[k] for k in RECORD_KEYS])
        assert search.stage == 2
    assert any(r[4] for r in histories["fast"][4:])          # a move after the first redraw
    assert histories["fast"] == histories["textbook"]


def test_mirror_is_refused_where_a_mirror_image_is_not_of_its_class(digits):
    with pytest.raises(MinisenseError, match="--mirror") as e:
        runs.check_options(small_config(mirror=True), "mnist")
    assert "\n" not in str(e.value)
    net = random_network("mnist", 80, 0, digits.train.images[:100])
    with pytest.raises(MinisenseError, match="--mirror"):
        sense.Search(net, digits, small_config(mirror=True))
    runs.check_options(SenseConfig(mirror=True, redraw_steps=5), "carracing")   # accepted


# -- the margin clip's scale ----------------------------------------------------------------------

@pytest.mark.slow
def test_margin_scale_multiplies_the_start_s_logit_spread_and_one_is_the_search_without_it(
        digits, tmp_path):
    records, clips = [], []
    for name, cfg in (("default", small_config(max_steps=30)),
                      ("one", small_config(max_steps=30, margin_scale=1.0)),
                      ("three", small_config(max_steps=30, margin_scale=3.0))):
        run = runs.start(cfg, tmp_path / name, "digits", sparsity=80)
        run.run()
        records.append([[r.get(k) for k in RECORD_KEYS] for r in run.history])
        clips.append(run.config.margin_clip)
        saved = runs.read_config(tmp_path / name / "config.json")
        assert (saved.margin_clip, saved.margin_scale) == (clips[-1], cfg.margin_scale)
    assert records[0] == records[1] and records[0] != records[2]
    images, labels = digits.train.images[:300], digits.train.labels[:300]
    spread = float(exact_logits(runs.initial_network(1, "digits", sparsity=80)[0],
                                images).std())
    assert clips == [round(spread), round(spread), round(3 * spread)]
    # the last run's fitness is the mean margin clipped at the scaled clip
    margin = score_logits(exact_logits(run.network(), images), labels, clips[2])[1]
    assert run.history[-1]["fitness"] == margin / (300 * clips[2])


@pytest.mark.parametrize("scale", [0, -1.0, float("inf"), float("nan"), "2", True])
def test_a_margin_scale_not_a_positive_finite_number_is_one_line_error(digits, scale):
    net = random_network("mnist", 80, 0, digits.train.images)
    with pytest.raises(MinisenseError, match="margin"):
        sense.Search(net, digits, small_config(margin_scale=scale))


def test_a_margin_scale_beyond_the_largest_clip_is_one_line_error(digits):
    net = random_network("mnist", 80, 0, digits.train.images)
    with pytest.raises(MinisenseError, match="smaller --margin-scale"):
        sense.Search(net, digits, small_config(margin_scale=1e9))


# -- subsampled fitness images ---------------------------------------------------------------------

def test_a_subsampled_stage_is_a_share_of_the_fitness_set_drawn_by_seed_and_stage(digits):
    cfg = small_config(subsample=0.25, train_images=300)
    images, labels = sense.stage_images(digits, cfg, 3)
    assert len(labels) == sense.subsample_size(300, 0.25) == 75
    plain, plain_labels = sense.fitness_set(digits, 300)
    # every image is a distinct image of the fitness set, with its own label
    rows = {plain[i].tobytes(): i for i in range(300)}
    assert len(rows) == 300
    taken = [rows[image.tobytes()] for image in images]
    assert len(set(taken)) == 75 and np.array_equal(labels, plain_labels[taken])
    again = sense.stage_images(digits, cfg, 3)
    assert all(np.array_equal(x, y) for x, y in zip((images, labels), again))
    assert not np.array_equal(images, sense.stage_images(digits, cfg, 4)[0])
    other_seed = dataclasses.replace(cfg, seed=2)
    assert not np.array_equal(images, sense.stage_images(digits, other_seed, 3)[0])
    # with shifts, the share is drawn first and then shifted (its own stream)
    shifted = sense.stage_images(digits, dataclasses.replace(cfg, shift_pixels=1), 3)
    assert np.array_equal(shifted[1], labels) and not np.array_equal(shifted[0], images)
    assert sense.subsample_size(3, 0.01) == 1 and sense.subsample_size(300, 1.0) == 300


@pytest.mark.slow
def test_with_subsample_one_a_search_is_bit_for_bit_the_search_without_the_setting(digits,
                                                                                  tmp_path):
    records = []
    for name, cfg in (("default", small_config(max_steps=30)),
                      ("one", small_config(max_steps=30, subsample=1.0))):
        run = runs.start(cfg, tmp_path / name, "digits", sparsity=80)
        run.run()
        records.append([[r.get(k) for k in RECORD_KEYS] for r in run.history])
        assert runs.read_config(tmp_path / name / "config.json").subsample == 1.0
    assert records[0] == records[1]


@pytest.mark.slow
def test_subsampled_stages_score_exactly_their_images_resume_and_match_the_textbook(
        digits, tmp_path):
    """Delta evaluation stays exact across redraws of a share of the images (every record's
    fitness is a full forward pass on its stage's images), a run killed mid-stage resumes to the
    same steps, and the textbook tier takes the same steps."""
    cfg = small_config(max_steps=24, neighbours=10, train_images=200, subsample=0.5,
                       redraw_steps=8, screen_images=0)
    whole = runs.start(cfg, tmp_path / "whole", "digits", sparsity=80)
    seen = []

    def check(record):
        stage, scored = assert_stage_fitness(record, whole.network(), whole.config, digits)
        assert scored == 100
        seen.append(stage)

    whole.run(on_step=check)
    assert seen == [0] * 8 + [1] * 8 + [2] * 8
    assert any(r["accepted"] for r in whole.history[9:])       # moves after a redraw
    # the margin clip is the start's spread on the whole fitness set, not on a share
    spread = float(exact_logits(runs.initial_network(1, "digits", sparsity=80)[0],
                                digits.train.images[:200]).std())
    assert whole.config.margin_clip == round(spread)
    assert_resumes_alike(whole, cfg, tmp_path / "part", 11)
    book = runs.start(dataclasses.replace(cfg, engine="textbook", max_steps=12),
                      tmp_path / "book", "digits", sparsity=80)
    book.run()
    assert [[r.get(k) for k in RECORD_KEYS] for r in book.history] == \
        [[r.get(k) for k in RECORD_KEYS] for r in whole.history[:13]]


@pytest.mark.parametrize("share", [0, -0.5, 1.5, float("inf"), float("nan"), "0.5", True])
def test_a_subsample_outside_zero_to_one_is_one_line_error(digits, share):
    net = random_network("mnist", 80, 0, digits.train.images)
    with pytest.raises(MinisenseError, match="subsample") as e:
        sense.Search(net, digits, small_config(subsample=share))
    assert "\n" not in str(e.value)


# -- class weights ---------------------------------------------------------------------------------

WEIGHTS = [1, 2, 1, 1, 1, 1, 1, 1, 1, 3]


def test_class_weights_put_each_fitness_image_in_w_times(digits):
    images, labels = sense.fitness_set(digits, 300, WEIGHTS)
    plain, plain_labels = sense.fitness_set(digits, 300)
    assert len(labels) == int(np.sum(np.array(WEIGHTS)[plain_labels]))
    counts = {}
    for image in images:
        counts[image.tobytes()] = counts.get(image.tobytes(), 0) + 1
    assert [counts[image.tobytes()] for image in plain] == [WEIGHTS[y] for y in plain_labels]
    assert all(np.array_equal(x, y) for x, y in zip((images, labels),
                                                    sense.fitness_set(digits, 300, WEIGHTS)))


def test_a_class_weighted_search_scores_the_weighted_margin_and_accuracy(digits, tmp_path):
    """Oracle: per class, the unweighted scorer on a full forward pass of the plain fitness
    images, times that class's weight; a resumed run takes the same steps."""
    cfg = small_config(max_steps=12, neighbours=10, class_weights=WEIGHTS)
    run = runs.start(cfg, tmp_path / "w", "digits", sparsity=80)
    plain, labels = sense.fitness_set(digits, 300)
    total = sum(WEIGHTS[y] for y in labels)

    def check(record):
        z = exact_logits(run.network(), plain)
        scores = [score_logits(z[labels == c], labels[labels == c], run.config.margin_clip)
                  for c in range(10)]
        correct = sum(w * s[0] for w, s in zip(WEIGHTS, scores))
        margin = sum(w * s[1] for w, s in zip(WEIGHTS, scores))
        assert record["fitness"] == margin / (total * run.config.margin_clip)
        assert record["train_accuracy"] == correct / total

    run.run(on_step=check)
    assert any(r["accepted"] for r in run.history[1:])
    assert runs.read_config(tmp_path / "w" / "config.json").class_weights == WEIGHTS
    assert_resumes_alike(run, cfg, tmp_path / "part", 5)


@pytest.mark.parametrize("weights", [[1, 2], [0] * 10, [1.5] * 10, [True] * 10, "1,2",
                                     [sense.MAX_CLASS_WEIGHT + 1] * 10, []])
def test_bad_class_weights_are_a_one_line_error(digits, weights):
    net = random_network("mnist", 80, 0, digits.train.images)
    with pytest.raises(MinisenseError, match="class.weights") as e:
        sense.Search(net, digits, small_config(class_weights=weights))
    assert "\n" not in str(e.value)
