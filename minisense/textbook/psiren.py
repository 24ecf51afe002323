"""p-SIREN, Algorithm 1 of the paper (Section 4.1): a p-sparse binary network by backprop.

Step 1  train the dense float network for n1 epochs (SGD with momentum).
Step 2  for k = 1..n2: prune the lowest-magnitude weights so that, after epoch k, a fraction k/n2
        of the target N*p/100 zeros are zero, training with the mask. By default the mask moves
        along this schedule after every batch (``prune_every="batch"``: the fraction after batch i
        of epoch k is (k - 1 + i/B)/n2), not once at the start of each epoch (``"epoch"``): at
        high sparsity a whole epoch's jump of the mask leaves too little to recover from.
Step 3  fine-tune the sparse network for n3 epochs with the mask fixed.
Step 4  binarize to {-1, 0, +1} (``network.binarize``) and fine-tune n4 epochs with the
        straight-through estimator, mask fixed; the final weights are exactly ternary. Each
        layer's scale (gain) is learned too, its gradient scaled by LSQ's 1/sqrt(N) (``SGD``).

Pruning is ``global`` (one magnitude ranking over all layers, as the paper counts zeros over the
whole network: ||w||_0 = n*p/100) or per ``layer`` (every layer p% sparse). Ties in magnitude are
broken by position (a stable sort), so the number of zeros is exactly round(N*p/100), where N
counts the weights being ranked. The test split is only ever reported; nothing selects on it.

Both tiers run this code: the network passed in is a textbook ``Network`` or its fast twin, whose
``forward`` and ``backward`` are the only difference (``minisense.fast.network``).
"""

from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import dataclass, field

import numpy as np

from minisense.data import check_class_weights
from minisense.errors import MinisenseError
from minisense.textbook.layers import SGD, softmax_cross_entropy
from minisense.textbook.network import Network, binarize, fix_thresholds

STEPS = ("dense", "prune", "sparse", "binary")
PRUNING = ("global", "layer")
PRUNE_EVERY = ("epoch", "batch")
GAIN_GRAD_SCALES = ("lsq", "none")


@dataclass(frozen=True)
class PsirenConfig:
    """Hyper-parameters of Algorithm 1; the paper states none beyond the four epoch counts."""

    sparsity: float = 90.0                 # p, percent of weights that are zero
    epochs: dict = field(default_factory=lambda: {"dense": 10, "prune": 5, "sparse": 5,
                                                  "binary": 10})   # n1, n2, n3, n4
    batch_size: int = 100
    lr: float = 0.05                       # steps 1-3, cosine-decayed within steps 1 and 3
    lr_binary: float = 0.01                # step 4
    learn_gains: bool = True               # step 4 also learns each layer's scale
    gain_grad_scale: str = "lsq"           # step 4: LSQ's 1/sqrt(N) on the gains' gradients
    momentum: float = 0.9
    weight_decay: float = 5e-4
    pruning: str = "global"
    prune_every: str = "batch"             # how often step 2 moves the mask along its schedule
    # Per-class weights of the cross-entropy (``softmax_cross_entropy``), or None for all 1. Under
    # a label the input cannot decide (the car's gas near its speed cap), the argmax of a
    # calibrated network never picks the minority class; weighting it shifts the decision there.
    class_weights: tuple | None = None
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.class_weights, (list, np.ndarray)):     # as JSON or NumPy give them
            object.__setattr__(self, "class_weights", tuple(self.class_weights))

    def validate(self) -> None:
        """A one-line error for a setting of the wrong type or outside its range."""
        def number(value) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        def whole(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        if not (number(self.sparsity) and 0 <= self.sparsity < 100):
            raise MinisenseError(f"sparsity {self.sparsity} is outside [0, 100); give the percent "
                                 "of zero weights, e.g. --sparsity 90")
        for name, value, choices in (("pruning", self.pruning, PRUNING),
                                     ("prune_every", self.prune_every, PRUNE_EVERY),
                                     ("gain_grad_scale", self.gain_grad_scale, GAIN_GRAD_SCALES)):
            if value not in choices:
                raise MinisenseError(f"unknown {name} {value!r}; choose one of "
                                     f"{', '.join(choices)}")
        if not isinstance(self.epochs, dict) or sorted(self.epochs) != sorted(STEPS):
            raise MinisenseError(f"epochs must give each of the steps {', '.join(STEPS)} a "
                                 f"count, got {self.epochs!r}")
        for step, n in self.epochs.items():
            if not whole(n) or n < 0 or (step == "prune" and n < 1 and self.sparsity > 0):
                raise MinisenseError(f"epochs for step {step!r} must be >= "
                                     f"{1 if step == 'prune' else 0}, got {n}")
        if not whole(self.batch_size) or self.batch_size < 1:
            raise MinisenseError(f"batch size must be a whole number >= 1, got "
                                 f"{self.batch_size!r}")
        if not whole(self.seed) or not 0 <= self.seed < 2 ** 32:
            raise MinisenseError(f"seed {self.seed!r} is outside 0..{2 ** 32 - 1}; give --seed "
                                 "in that range")
        for name in ("momentum", "weight_decay"):
            value = getattr(self, name)
            if not (number(value) and 0 <= value < float("inf")):
                raise MinisenseError(f"{name} must be a finite number >= 0, got {value!r}")
        if not isinstance(self.learn_gains, bool):
            raise MinisenseError(f"learn_gains must be True or False, got {self.learn_gains!r}")
        if self.class_weights is not None and not (
                isinstance(self.class_weights, tuple) and self.class_weights
                and all(number(w) and 0 < w < float("inf") for w in self.class_weights)):
            raise MinisenseError(f"class weights must be finite numbers > 0, one a "
                                 f"class, e.g. --class-weights 1,2,1; got {self.class_weights!r}")
        for name, rate in (("lr", self.lr), ("lr_binary", self.lr_binary)):
            if not (isinstance(rate, (int, float)) and 0 < rate < float("inf")):
                raise MinisenseError(f"{name} must be a finite number > 0, got {rate!r}")


# -- step 2: magnitude pruning ----------------------------------------------------------------

def target_zeros(net: Network, sparsity: float, pruning: str, fraction: float = 1.0) -> dict:
    """Zeros per layer after pruning to ``fraction`` of the target (Algorithm 1, step 2).

    Global pruning returns {"*": count}; per-layer pruning a count per layer name.
    """
    sizes = {name: layer.weight.size for name, layer in net.weighted.items()}
    if pruning == "global":
        return {"*": int(round(sum(sizes.values()) * sparsity / 100 * fraction))}
    return {name: int(round(n * sparsity / 100 * fraction)) for name, n in sizes.items()}


def prune(net: Network, zeros: dict) -> None:
    """Zero the lowest-magnitude weights: ``zeros`` as from :func:`target_zeros`, ties broken by
    position (the first ``count`` of a stable sort by magnitude).

    Masks only grow (a pruned weight has magnitude 0 and is ranked first again).
    """
    groups = [list(net.weighted)] if "*" in zeros else [[name] for name in net.weighted]
    for names in groups:
        count = zeros["*"] if "*" in zeros else zeros[names[0]]
        magnitudes = np.concatenate([np.abs(net.weighted[n].effective_weight()).ravel()
                                     for n in names])
        keep = np.ones(magnitudes.size, dtype=bool)
        keep[np.argsort(magnitudes, kind="stable")[:max(count, 0)]] = False
        offset = 0
        for n in names:
            layer = net.weighted[n]
            size = layer.weight.size
            layer.mask = keep[offset:offset + size].reshape(layer.weight.shape).astype(
                layer.weight.dtype)
            layer.weight *= layer.mask
            offset += size


# -- the one training loop: minibatch SGD ---------------------------------------------------------

def _no_progress(iterable, label=""):
    return contextlib.nullcontext(iterable)


def sgd_step(net: Network, optimizer: SGD, images: np.ndarray, labels: np.ndarray,
             class_weights=None) -> float:
    """One SGD step on a batch: forward, softmax cross-entropy (weighted by ``class_weights``,
    if given), backward, update. Returns the batch's loss. images uint8 (b, h, w), labels int
    (b,)."""
    loss, dlogits = softmax_cross_entropy(net.forward(images), labels, class_weights)
    net.backward(dlogits)
    optimizer.step()
    return loss


def train_epoch(net: Network, images: np.ndarray, labels: np.ndarray, optimizer: SGD,
                rng: np.random.Generator, batch_size: int, lr_schedule=None,
                progress=_no_progress, label: str = "", before_batch=None,
                class_weights=None) -> float:
    """One epoch of minibatch SGD over a fresh permutation; returns the mean loss.

    images uint8 (n, h, w), labels int64 (n,). ``lr_schedule(i)`` gives the rate for batch i;
    ``before_batch(i)``, if given, runs before batch i (step 2 moves the mask there);
    ``class_weights`` weight the loss (``sgd_step``).
    """
    order = rng.permutation(len(images))
    starts = range(0, len(images), batch_size)
    total = 0.0
    # Overflow means divergence, which the caller reports as one line from the non-finite loss.
    with progress(starts, label=label) as bar, np.errstate(over="ignore", invalid="ignore"), \
            net.batches():
        for i, start in enumerate(bar):
            batch = order[start:start + batch_size]
            if lr_schedule is not None:
                optimizer.lr = lr_schedule(i)
            if before_batch is not None:
                before_batch(i)
            total += sgd_step(net, optimizer, images[batch], labels[batch],
                              class_weights) * len(batch)
    return total / len(images)


def _cosine(lr: float, epochs: int, batches: int):
    """Per-batch cosine decay from lr to 0 over a whole step (epoch e, batch i)."""
    total = max(1, epochs * batches)
    return lambda e, i: lr * 0.5 * (1 + float(np.cos(np.pi * (e * batches + i) / total)))


def train_step(net: Network, dataset, config: PsirenConfig, rng: np.random.Generator,
               step: str, lr: float, progress, log, cosine: bool = True,
               before_batch=None, after_epoch=None) -> list[dict]:
    """The epochs of one step of Algorithm 1: SGD with momentum, the rate cosine-decayed over the
    step (or constant); a record per epoch, and one for the finished step with its test accuracy.

    ``before_batch(epoch, i)`` runs before batch i of an epoch (step 2 moves the mask there);
    ``after_epoch()`` after each epoch (step 4 rounds its thresholds there).
    """
    train, val = dataset.train, dataset.validation
    epochs = config.epochs[step] if step != "prune" or config.sparsity > 0 else 0
    batches = -(-len(train.images) // config.batch_size)
    schedule = _cosine(lr, epochs, batches) if cosine else None
    # No weight decay in step 4: it would pull the latent weights, and so the signs, to zero.
    optimizer = SGD(list(net.weighted.values()), lr, config.momentum,
                    0.0 if step == "binary" else config.weight_decay,
                    lsq_gains=config.gain_grad_scale == "lsq")
    history, started = [], time.perf_counter()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        loss = train_epoch(
            net, train.images, train.labels, optimizer, rng, config.batch_size,
            None if schedule is None else functools.partial(schedule, epoch),
            progress, f"{step} {epoch + 1}/{epochs}",
            before_batch=None if before_batch is None else functools.partial(before_batch, epoch),
            class_weights=config.class_weights)
        if not np.isfinite(loss):
            option = "--lr-binary" if step == "binary" else "--lr"
            raise MinisenseError(f"p-SIREN diverged: loss {loss} in {step} epoch {epoch + 1}; "
                                 f"lower {option} (it was {lr:g})")
        if after_epoch is not None:
            after_epoch()
        history.append({"step": step, "epoch": epoch + 1, "loss": loss,
                        "validation_accuracy": net.accuracy(val.images, val.labels),
                        "seconds": time.perf_counter() - t0})
        log(f"  {step} epoch {epoch + 1}/{epochs}: loss {loss:.4f}, validation "
            f"{100 * history[-1]['validation_accuracy']:.2f}%, {history[-1]['seconds']:.1f} s")
    for layer in net.weighted.values():
        layer.learn_gain = False
    return history + [_step_record(net, dataset, step, epochs, time.perf_counter() - started,
                                   log)]


def _step_record(net: Network, dataset, step: str, epochs: int, seconds: float, log) -> dict:
    """The record of a finished step: validation and test accuracy, zeros, seconds."""
    val, test = dataset.validation, dataset.test
    record = {"step": step, "epochs": epochs, "done": True,
              "validation_accuracy": net.accuracy(val.images, val.labels),
              "test_accuracy": net.accuracy(test.images, test.labels),
              "zeros": int(sum((layer.effective_weight() == 0).sum()
                               for layer in net.weighted.values())),
              "seconds": seconds}
    log(f"step {step}: {epochs} epochs, validation {100 * record['validation_accuracy']:.2f}%, "
        f"test {100 * record['test_accuracy']:.2f}%, {record['zeros']} zeros, "
        f"{record['seconds']:.1f} s")
    return record


# -- the four steps ------------------------------------------------------------------------------

def dense_step(net: Network, dataset, config: PsirenConfig, rng: np.random.Generator,
               progress=_no_progress, log=lambda line: None) -> list[dict]:
    """Algorithm 1, step 1: train the dense float network for n1 epochs."""
    return train_step(net, dataset, config, rng, "dense", config.lr, progress, log)


def prune_step(net: Network, dataset, config: PsirenConfig, rng: np.random.Generator,
               progress=_no_progress, log=lambda line: None) -> list[dict]:
    """Algorithm 1, step 2: for k = 1..n2, train while pruning the lowest-magnitude weights
    until k/n2 of the target zeros are zero; the rate stays at ``lr``."""
    n2 = config.epochs["prune"]
    batches = -(-len(dataset.train.images) // config.batch_size)

    def move_mask(epoch: int, i: int) -> None:
        if config.prune_every == "epoch":
            if i == 0:
                prune(net, target_zeros(net, config.sparsity, config.pruning, (epoch + 1) / n2))
            return
        # The same linear schedule in steps of one batch: the mask reaches k/n2 of the target
        # zeros with the last batch of epoch k, so no epoch starts with a jump.
        prune(net, target_zeros(net, config.sparsity, config.pruning,
                                (epoch + (i + 1) / batches) / n2))

    return train_step(net, dataset, config, rng, "prune", config.lr, progress, log,
                      cosine=False, before_batch=move_mask)


def sparse_step(net: Network, dataset, config: PsirenConfig, rng: np.random.Generator,
                progress=_no_progress, log=lambda line: None) -> list[dict]:
    """Algorithm 1, step 3: fine-tune the sparse network for n3 epochs, the mask fixed."""
    return train_step(net, dataset, config, rng, "sparse", config.lr, progress, log)


def binary_step(net: Network, dataset, config: PsirenConfig, rng: np.random.Generator,
                progress=_no_progress, log=lambda line: None) -> list[dict]:
    """Algorithm 1, step 4: binarize to {-1, 0, +1} and fine-tune for n4 epochs with the
    straight-through estimator, the mask fixed; each layer's gain is learned too, then rounded
    into the integer thresholds after every epoch."""
    binarize(net)
    # Before any fine-tuning: how much binarization alone costs (step 4's starting point).
    val = dataset.validation
    log(f"  binarized: validation {100 * net.accuracy(val.images, val.labels):.2f}%")
    for layer in net.weighted.values():
        layer.learn_gain = config.learn_gains
    return train_step(net, dataset, config, rng, "binary", config.lr_binary, progress, log,
                      after_epoch=lambda: fix_thresholds(net))


def psiren(net: Network, dataset, config: PsirenConfig, rng: np.random.Generator,
           progress=_no_progress, log=lambda line: None, step1=None) -> list[dict]:
    """Algorithm 1 on ``dataset`` (a ``minisense.data.Dataset``) from the freshly initialised
    float network ``net``, which it leaves binary; ``rng`` orders the batches.

    Returns the history: one record per epoch (step, epoch, loss, validation accuracy, seconds)
    and one per finished step with its test accuracy too. ``progress(iterable, label=...)`` wraps
    the batches (e.g. ``click.progressbar``); ``log`` receives one human-readable line per epoch
    and step. ``step1``, a function with :func:`dense_step`'s arguments, stands in for step 1.
    """
    check_class_weights(config.class_weights, dataset.num_classes, dataset.name)
    history = (step1 or dense_step)(net, dataset, config, rng, progress, log)    # step 1
    history += prune_step(net, dataset, config, rng, progress, log)              # step 2
    history += sparse_step(net, dataset, config, rng, progress, log)             # step 3
    history += binary_step(net, dataset, config, rng, progress, log)             # step 4
    return history
