"""p-SIREN (Algorithm 1) on a tiny dataset: exact zero counts, ternary weights, determinism."""

from dataclasses import replace

import numpy as np
import pytest

import minisense.textbook.psiren as P
from minisense.data import Dataset, Split
from minisense.errors import MinisenseError
from minisense.experiments import shared_step1
from minisense.fast.layers import SGD, softmax_cross_entropy
from minisense.network import build_network
from minisense.psiren import (
    ADDED_OPTIONS,
    DATASET_RATES,
    PsirenConfig,
    config_for,
    continue_binary,
    psiren,
    same_config,
)
from minisense.runs import random_network
from minisense.textbook.psiren import _cosine, prune, target_zeros

TINY_EPOCHS = {"dense": 1, "prune": 3, "sparse": 1, "binary": 1}


@pytest.fixture(scope="module")
def tiny():
    """200 random 28x28 images whose class is the brightest of ten vertical stripes (learnable)."""
    rng = np.random.default_rng(0)

    def split(n):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, y in enumerate(labels):
            images[i, 4:24, 2 + 2 * y:4 + 2 * y] = 250
        return Split(images, labels.astype(np.int64))

    return Dataset("tiny", split(200), split(60), split(60), 10, "test fixture")


@pytest.mark.slow
@pytest.mark.parametrize("prune_every", ["batch", "epoch"])
@pytest.mark.parametrize("pruning", ["global", "layer"])
@pytest.mark.parametrize("sparsity", [0, 50, 87, 95])
def test_psiren_gives_exactly_the_documented_zeros_and_ternary_weights(tiny, pruning, sparsity,
                                                                        prune_every):
    config = PsirenConfig(sparsity=sparsity, epochs=TINY_EPOCHS, pruning=pruning, batch_size=50,
                          prune_every=prune_every)
    net, history = psiren(tiny, config)
    weights = net.ternary_weights()
    sizes = {name: w.size for name, w in weights.items()}
    zeros = {name: int((w == 0).sum()) for name, w in weights.items()}
    for w in weights.values():
        assert w.dtype == np.int8 and set(np.unique(w)) <= {-1, 0, 1}
    if pruning == "global":
        assert sum(zeros.values()) == round(sum(sizes.values()) * sparsity / 100)
    else:
        assert zeros == {name: round(n * sparsity / 100) for name, n in sizes.items()}
    steps = [h["step"] for h in history if h.get("done")]
    assert steps == ["dense", "prune", "sparse", "binary"]


def test_gradual_pruning_reaches_k_over_n2_of_the_target_after_epoch_k(tiny):
    net = build_network("mnist", 0)
    total = sum(layer.weight.size for layer in net.weighted.values())
    for k in range(1, 5):
        prune(net, target_zeros(net, 90, "global", k / 4))
        zeros = sum(int((layer.effective_weight() == 0).sum()) for layer in net.weighted.values())
        assert zeros == round(total * 0.9 * k / 4)


@pytest.mark.slow
@pytest.mark.parametrize("pruning", ["global", "layer"])
def test_pruning_every_batch_follows_the_same_schedule_to_the_exact_zeros(tiny, pruning):
    # 200 images at batch 50: 4 batches per epoch, so after batch i of epoch e the mask holds
    # (e + (i + 1) / 4) / n2 of the target; record the zeros seen by every batch.

    seen, original = [], P.train_epoch

    def spy(net, *args, before_batch=None, **kwargs):
        def count(i):
            before_batch(i)
            seen.append(sum(int((layer.mask == 0).sum()) for layer in net.weighted.values()))
        return original(net, *args, before_batch=count if before_batch else None, **kwargs)

    config = PsirenConfig(sparsity=90, epochs=TINY_EPOCHS, pruning=pruning, batch_size=50,
                          prune_every="batch")
    P.train_epoch = spy
    try:
        net, _ = psiren(tiny, config)
    finally:
        P.train_epoch = original
    n2, batches = TINY_EPOCHS["prune"], 4
    wanted = [sum(target_zeros(net, 90, pruning, (e + (i + 1) / batches) / n2).values())
              for e in range(n2) for i in range(batches)]
    assert seen == wanted and len(set(seen)) == len(seen)      # grows at every batch
    zeros = sum(int((w == 0).sum()) for w in net.ternary_weights().values())
    assert zeros == sum(target_zeros(net, 90, pruning).values())


def test_unknown_gain_grad_scale_is_refused():
    with pytest.raises(MinisenseError, match="gain_grad_scale"):
        PsirenConfig(gain_grad_scale="adam").validate()


def test_unknown_prune_every_is_refused():
    with pytest.raises(MinisenseError, match="prune_every"):
        PsirenConfig(prune_every="step").validate()


def test_pruning_removes_the_lowest_magnitudes_and_masks_only_grow():
    net = build_network("mnist", 1)
    before = np.concatenate([np.abs(layer.weight).ravel() for layer in net.weighted.values()])
    prune(net, target_zeros(net, 50, "global"))
    kept = np.concatenate([layer.mask.ravel() for layer in net.weighted.values()]) == 1
    assert before[kept].min() >= before[~kept].max()
    first = {n: layer.mask.copy() for n, layer in net.weighted.items()}
    prune(net, target_zeros(net, 80, "global"))
    for n, layer in net.weighted.items():
        assert np.all(layer.mask <= first[n])


@pytest.mark.slow
def test_same_seed_same_weights_bit_for_bit(tiny):
    config = PsirenConfig(sparsity=80, epochs=TINY_EPOCHS, batch_size=50, seed=7)
    a, _ = psiren(tiny, config)
    b, _ = psiren(tiny, config)
    for name, w in a.ternary_weights().items():
        assert np.array_equal(w, b.ternary_weights()[name])
    assert a.thresholds == b.thresholds


def _same_network(a, b) -> bool:
    return (all(np.array_equal(la.weight, lb.weight) and la.gain == lb.gain
                for la, lb in zip(a.weighted.values(), b.weighted.values()))
            and a.thresholds == b.thresholds)


@pytest.mark.slow
def test_runs_sharing_step_1_equal_runs_that_train_it_bit_for_bit(tiny, tmp_path):
    """The sparsity sweep trains step 1 once per seed; every level must still get exactly the
    network it would get alone, whether it saved step 1 or read it back."""
    store = tmp_path / "dense"
    alone50, history50 = psiren(tiny, PsirenConfig(sparsity=50, epochs=TINY_EPOCHS, seed=3))
    saved, _ = psiren(tiny, PsirenConfig(sparsity=50, epochs=TINY_EPOCHS, seed=3),
                      step1=shared_step1(store))
    assert (store / "dense.npz").is_file() and _same_network(alone50, saved)
    alone87, history87 = psiren(tiny, PsirenConfig(sparsity=87, epochs=TINY_EPOCHS, seed=3))
    read, history = psiren(tiny, PsirenConfig(sparsity=87, epochs=TINY_EPOCHS, seed=3),
                           step1=shared_step1(store))
    assert _same_network(alone87, read)
    dense = [h for h in history if h["step"] == "dense"]
    assert dense and all(h["reused_from"] == str(store) for h in dense)
    assert [h["validation_accuracy"] for h in history] == \
        [h["validation_accuracy"] for h in history87]
    # The store holds step 1 of seed 3 at lr 0.05: another seed or rate must not read it.
    for other in (dict(seed=4), dict(seed=3, lr=0.02)):
        config = PsirenConfig(sparsity=87, epochs=TINY_EPOCHS, **other)
        net, history = psiren(tiny, config, step1=shared_step1(store))
        assert not any("reused_from" in h for h in history)
        assert _same_network(net, psiren(tiny, config)[0])


@pytest.mark.slow
def test_lsq_scaling_keeps_step_4_gains_stable_on_a_dense_ternary_network(tiny):
    """At 0% sparsity every weight is kept, so a gain's gradient sums the most terms; unscaled,
    the gains run away (on MNIST: over 100-fold in 15 batches, loss 0.48 -> 24). LSQ's
    1/sqrt(N) keeps them in place."""
    epochs = {"dense": 3, "prune": 0, "sparse": 0, "binary": 3}

    def step4_losses(scale):
        _, history = psiren(tiny, PsirenConfig(sparsity=0, epochs=epochs, batch_size=50,
                                               gain_grad_scale=scale))
        return [h["loss"] for h in history if h["step"] == "binary" and "loss" in h]

    lsq = step4_losses("lsq")
    assert lsq == sorted(lsq, reverse=True) and lsq[-1] < 0.2
    assert max(step4_losses("none")) > 5                 # the failure the scaling removes


@pytest.mark.slow
def test_psiren_learns_the_tiny_task(tiny):
    config = PsirenConfig(sparsity=80, epochs={"dense": 4, "prune": 2, "sparse": 2, "binary": 4},
                          batch_size=20)
    net, history = psiren(tiny, config)
    assert net.accuracy(tiny.test.images, tiny.test.labels) > 0.5   # chance is 0.1


@pytest.mark.parametrize("sparsity", [100, -1, 150])
def test_sparsity_outside_0_100_is_a_one_line_error(tiny, sparsity):
    with pytest.raises(MinisenseError, match=r"outside \[0, 100\)"):
        psiren(tiny, PsirenConfig(sparsity=sparsity))


@pytest.mark.slow
def test_binary_fine_tuning_stays_in_float32(tiny):
    """Step 4 learns the gains under a cosine rate; a NumPy float64 gain would quietly promote
    every later forward and backward pass to float64 (three times slower), so the gains must stay
    Python floats and the logits float32."""
    config = PsirenConfig(sparsity=90, epochs=TINY_EPOCHS, batch_size=50)
    net, _ = psiren(tiny, config)
    for layer in net.weighted.values():
        assert type(layer.gain) is float
        layer.learn_gain = True
    optimizer = SGD(list(net.weighted.values()), _cosine(0.01, 1, 4)(0, 1), 0.9)
    for _ in range(2):
        logits = net.forward(tiny.train.images[:50])
        assert logits.dtype == np.float32
        _, d = softmax_cross_entropy(logits, tiny.train.labels[:50])
        net.backward(d)
        optimizer.step()
    assert all(type(layer.gain) is float for layer in net.weighted.values())
    assert net.forward(tiny.train.images[:5]).dtype == np.float32


def test_config_for_uses_the_dataset_rates_unless_given():
    assert config_for("mnist", sparsity=95).lr == PsirenConfig().lr
    car = config_for("carracing", sparsity=90, lr=None)
    assert (car.lr, car.lr_binary) == (DATASET_RATES["carracing"]["lr"],
                                       DATASET_RATES["carracing"]["lr_binary"])
    assert config_for("carracing", lr=0.2).lr == 0.2


def test_a_run_saved_before_an_option_existed_counts_as_that_options_old_behaviour():
    from dataclasses import asdict

    config = PsirenConfig(sparsity=90, seed=2, prune_every="epoch", gain_grad_scale="none")
    old = {k: v for k, v in asdict(config).items() if k not in ADDED_OPTIONS}
    assert same_config(old, config) and same_config(asdict(config), config)
    assert not same_config(old, PsirenConfig(sparsity=90, seed=2))     # defaults: batch, lsq
    assert not same_config(old, PsirenConfig(sparsity=90, seed=2, prune_every="epoch"))
    assert not same_config({**old, "seed": 3}, config)


def test_a_saved_class_weights_list_is_the_same_config_as_the_tuple():
    from dataclasses import asdict

    config = PsirenConfig(sparsity=90, class_weights=(1.0, 2.0, 1.0))
    saved = {**asdict(config), "class_weights": [1.0, 2.0, 1.0]}          # as JSON gives it
    assert same_config(saved, config)
    assert not same_config(saved, PsirenConfig(sparsity=90))
    assert not same_config(asdict(PsirenConfig(sparsity=90)), config)
    assert PsirenConfig(class_weights=[1, 2.0]).class_weights == (1, 2.0)


@pytest.mark.parametrize("weights", [(1.0, -1.0), (0.0,), (), (float("nan"), 1.0), "1,2", (True,)])
def test_bad_class_weights_are_a_one_line_error(weights):
    with pytest.raises(MinisenseError, match="class weights"):
        PsirenConfig(class_weights=weights).validate()


def test_class_weights_must_give_every_class_one(tiny):
    with pytest.raises(MinisenseError, match="3 class weights for the 10 classes of tiny"):
        psiren(tiny, PsirenConfig(class_weights=(1.0, 2.0, 1.0)))


def test_a_heavier_class_wins_where_the_input_cannot_decide():
    """Images of noise labelled 1 with probability 0.3, else 0 (the car's gas near its speed cap:
    nothing in the frame decides it): unweighted, the network predicts the majority 0; with
    class 1 weighted 5 (0.3 * 5 > 0.7) it predicts 1."""
    rng = np.random.default_rng(3)

    def split(n):
        labels = (rng.random(n) < 0.3).astype(np.int64)
        return Split(rng.integers(0, 256, (n, 28, 28)).astype(np.uint8), labels)

    noise = Dataset("noise", split(300), split(100), split(100), 10, "test fixture")
    config = PsirenConfig(sparsity=80, epochs={"dense": 2, "prune": 1, "sparse": 0, "binary": 1},
                          batch_size=20)
    shares = {}
    for heavy in (1.0, 5.0):
        net, _ = psiren(noise, replace(config, class_weights=(1.0, heavy) + (1.0,) * 8))
        shares[heavy] = np.mean(net.predict(noise.validation.images) == 1)
    assert shares[1.0] < 0.2 and shares[5.0] > 0.8


def test_pruning_selection_is_the_stable_argsort_one_ties_and_all():
    net = build_network("mnist", 0)
    rng = np.random.default_rng(0)
    for trial in range(20):
        # Odd trials: few distinct values, so many ties fall across the cut.
        for layer in net.weighted.values():
            layer.mask = None
            layer.weight = (rng.integers(-4, 5, layer.weight.shape) if trial % 2 else
                            rng.standard_normal(layer.weight.shape)).astype(np.float32)
        m = np.concatenate([np.abs(layer.weight).ravel() for layer in net.weighted.values()])
        count = int(rng.integers(0, m.size + 1))
        oracle = np.ones(m.size, dtype=bool)
        oracle[np.argsort(m, kind="stable")[:count]] = False
        prune(net, {"*": count})
        kept = np.concatenate([layer.mask.ravel() for layer in net.weighted.values()]) == 1
        assert np.array_equal(kept, oracle)


@pytest.mark.slow
def test_the_textbook_engine_runs_algorithm_1_and_follows_the_fast_one(tiny):
    """The same algorithm on either tier: the same zeros, ternary weights, and losses equal to
    float32 rounding (the tiers sum the same products in other orders)."""
    config = PsirenConfig(sparsity=80, epochs=TINY_EPOCHS, batch_size=50, seed=3)
    runs = {engine: psiren(tiny, config, engine=engine) for engine in ("fast", "textbook")}
    (fast, fast_history), (plain, plain_history) = runs["fast"], runs["textbook"]
    assert fast.engine == "fast" and plain.engine == "textbook"
    losses = [[h["loss"] for h in history if "loss" in h]
              for history in (fast_history, plain_history)]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)
    # Rounding may flip a weight whose magnitude sits at the pruning cut or near zero: nearly
    # all agree (here, in fact, all of them).
    for name, w in fast.ternary_weights().items():
        assert (w == plain.ternary_weights()[name]).mean() > 0.999, name


def test_continuing_step_4_with_no_epochs_leaves_the_network_bit_for_bit(tiny):
    """The latent weights start at the real ones, g_l * sign(w): the network itself must not
    move before the first gradient step (integer logits, thresholds, last gain)."""
    net = random_network("mnist", 80, 0, tiny.train.images)
    before = (net.exact_logits(tiny.test.images), dict(net.thresholds), net.last_gain)
    config = PsirenConfig(sparsity=80, epochs={**TINY_EPOCHS, "binary": 0}, batch_size=50)
    continue_binary(net, tiny, config, np.random.default_rng(0))
    np.testing.assert_array_equal(net.exact_logits(tiny.test.images), before[0])
    assert (dict(net.thresholds), net.last_gain) == before[1:]


def test_continuing_step_4_learns_with_the_mask_fixed(tiny):
    """From a random 80% ternary network, step 4 alone learns the tiny task (chance 0.1) and
    never moves a zero: the family's zero positions stay where they were, the rest +-1."""
    net = random_network("mnist", 80, 0, tiny.train.images)
    zeros = {name: w == 0 for name, w in net.ternary_weights().items()}
    config = PsirenConfig(sparsity=80, epochs={**TINY_EPOCHS, "binary": 6}, batch_size=20,
                          lr_binary=0.01)
    history = continue_binary(net, tiny, config, np.random.default_rng(0))
    assert [r["epoch"] for r in history if "epoch" in r] == [1, 2, 3, 4, 5, 6]
    assert net.accuracy(tiny.test.images, tiny.test.labels) > 0.5
    for name, w in net.ternary_weights().items():
        np.testing.assert_array_equal(w == 0, zeros[name])
        assert set(np.unique(w)) <= {-1, 0, 1}
    assert all(isinstance(t, int) and t >= 1 for t in net.thresholds.values())
