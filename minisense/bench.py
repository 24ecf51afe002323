"""Speed of p-SIREN's training step: seconds per epoch, by layer, forward and backward.

``bench_train`` times dense MNIST training (Algorithm 1, step 1) at batch 100 on real batches,
as p-SIREN trains (the batch in shards on the machine's cores, ``minisense.fast.shards``), module by
module, and extrapolates to one epoch of ``epoch_images`` images. As a baseline measured
in the same run it times the matrix products alone that the same epoch needs (every convolution
and fully-connected layer as one BLAS product forward, two backward): the part no NumPy
implementation can avoid. Timings on a shared machine are noisy, so the load average is reported
with them and the figures are medians over repeats.
"""

from __future__ import annotations

import os
import time

import numpy as np

from minisense import checkpoint
from minisense.data import architecture_for, load_dataset
from minisense.fast.delta import DeltaEvaluator, block_window
from minisense.fast.kernels import LANES
from minisense.fast.layers import SGD, Conv2d, Linear, MaxPool2d
from minisense.fast.shards import Shards, blas_threads
from minisense.network import build_network, exact_logits
from minisense.runs import random_network
from minisense.sense import NETWORK_DEFAULTS, fitness_set
from minisense.swaps import sample_swaps
from minisense.textbook.psiren import sgd_step
from minisense.textbook.sense import ForwardPasses


def _module_label(module) -> str:
    return getattr(module, "name", type(module).__name__)


class _TimedShards(Shards):
    """:class:`minisense.fast.shards.Shards` that adds up each module's seconds, per shard and
    pass."""

    def __init__(self, modules: list):
        super().__init__(modules)
        self.seconds = np.zeros((self.shards, len(modules), 2))

    def _forward(self, s: int, x: np.ndarray) -> np.ndarray:
        for i, m in enumerate(self._replicas[s]):
            t = time.perf_counter()
            x = m.forward(x)
            self.seconds[s, i, 0] += time.perf_counter() - t
        return x

    def _backward(self, s: int, d: np.ndarray) -> None:
        for i in reversed(range(len(self.modules))):
            t = time.perf_counter()
            d = self._replicas[s][i].backward(d)
            self.seconds[s, i, 1] += time.perf_counter() - t
            if d is None:
                break


def bench_train(images: np.ndarray, labels: np.ndarray, batches: int = 50, repeats: int = 5,
                batch_size: int = 100, epoch_images: int = 60_000, seed: int = 0) -> dict:
    """Seconds per epoch of dense training, split by module and pass; images uint8 (n, 28, 28).

    Each repeat runs ``batches`` SGD steps as p-SIREN runs them (``textbook.psiren.sgd_step`` on
    the fast network: the batch in shards on the machine's cores) and then the same number of
    steps of the matrix products alone (on all of BLAS's threads), so that both see the machine
    in the same state (a shared machine's speed drifts within a minute). The ratio is the median of
    the repeats' ratios; times are the median repeat's, scaled to ``epoch_images / batch_size``
    steps. A module's seconds are its mean over the shards, which run at the same time; "other"
    is the rest of the step's wall time (loss, update, waiting for the slower shard).
    """
    net = build_network("mnist", seed)
    optimizer = SGD(list(net.weighted.values()), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(seed)
    products = _product_operands(net, batch_size)
    steps_per_epoch = epoch_images / batch_size
    load_before = os.getloadavg()
    shards = net.shards = _TimedShards(net.modules)        # the network's batches go here
    runs = []
    for repeat in range(repeats + 1):                        # repeat 0 warms caches up
        shards.seconds[:] = 0
        with net.batches():
            wall = time.perf_counter()
            for _ in range(batches):
                idx = rng.integers(0, len(images), batch_size)
                sgd_step(net, optimizer, images[idx], labels[idx])
            wall = time.perf_counter() - wall
        floor = _time_products(products, batches)
        if repeat:
            per_module = shards.seconds.mean(axis=0)
            runs.append((per_module[:, 0], per_module[:, 1], wall - per_module.sum(), floor))
    total = [f.sum() + b.sum() + o for f, b, o, _ in runs]
    forward, backward, other, _ = runs[int(np.argsort(total)[len(total) // 2])]
    scale = steps_per_epoch / batches
    layers = {}
    for i, m in enumerate(net.modules):
        label = _module_label(m)
        while label in layers:
            label += "'"
        layers[label] = {"forward_seconds": forward[i] * scale,
                         "backward_seconds": backward[i] * scale}
    ratios = [t / run[3] for t, run in zip(total, runs)]
    return {
        "epoch_images": epoch_images, "batch_size": batch_size, "batches_timed": batches,
        "repeats": repeats, "shards": shards.shards, "threads": shards.workers.threads,
        "epoch_seconds": (forward.sum() + backward.sum() + other) * scale,
        "forward_seconds": forward.sum() * scale, "backward_seconds": backward.sum() * scale,
        "other_seconds": other * scale, "layers": layers,
        "gemm_floor_epoch_seconds": float(np.median([run[3] for run in runs])) * scale,
        "ratio_to_gemm_floor": float(np.median(ratios)),
        "ratios_by_repeat": [float(r) for r in ratios],
        "load_average_before": load_before[0], "load_average_after": os.getloadavg()[0],
        "blas_threads": blas_threads(),
    }


def _product_operands(net, batch_size: int) -> list[tuple]:
    """Random operands of the matrix products of one training step, per weighted layer:
    (patches or inputs, weight matrix, output gradient) in the shapes of im2col's product."""
    rng = np.random.default_rng(1)
    shapes = []                                               # (rows, inner, out) per layer
    h, w, c = 28, 28, 1
    for m in net.modules:
        if isinstance(m, Conv2d):
            h, w = h + 2 * m.padding - m.kernel + 1, w + 2 * m.padding - m.kernel + 1
            out = m.weight.shape[0]
            shapes.append((batch_size * h * w, m.kernel * m.kernel * c, out))
            c = out
        elif isinstance(m, Linear):
            shapes.append((batch_size, m.weight.shape[1], m.weight.shape[0]))
        elif isinstance(m, MaxPool2d):
            h, w = h // m.k, w // m.k
    return [(rng.random((r, k), np.float32), rng.random((k, o), np.float32),
             rng.random((r, o), np.float32)) for r, k, o in shapes]


def _time_products(products: list[tuple], batches: int) -> float:
    """Seconds for ``batches`` steps of only the matrix products of a training step."""
    t = time.perf_counter()
    for _ in range(batches):
        for i, (a, b, dy) in enumerate(products):
            a @ b                                              # forward
            a.T @ dy                                           # weight gradient
            if i:                                              # input gradient (not the image's)
                dy @ b.T
    return time.perf_counter() - t


# ----------------------------------------------------------------------------------------------
# SENSE's hot path: scoring bit swaps (Algorithm 2) by delta evaluation, against the full forward.
# ----------------------------------------------------------------------------------------------

def bench_search(net, images: np.ndarray, labels: np.ndarray, layers=None, candidates=None,
                 seconds_per_layer: float = 5.0, seed: int = 0, margin_clip: int = 1000,
                 neighbours: int = 100, screen_images: int = 0, confirm: int | None = None,
                 screen_by_layer: dict | None = None, confirm_stages: int = 1) -> dict:
    """Candidate bit swaps scored per second, per layer, with ``DeltaEvaluator.score`` (Numba
    delta evaluation) and with ``textbook.sense.ForwardPasses.score`` (a full forward per swap,
    here by the fast network's exact inference), measured
    in the same run; images uint8 (n, h, w), labels (n,).

    For each layer (default: all) random swaps are drawn; the kernel is warmed up first (JIT
    compilation excluded), then ``score`` is called on batches of ``candidates`` swaps (an int or
    a dict layer -> int; by default 20 for layer 1, 500 for layer 2, 20,000 for fc layers) until
    ``seconds_per_layer`` have passed; the oracle then scores single swaps for a fifth of that
    (at least one), and both must agree on those. Rates are given per wall-clock second and per
    CPU second of this process (the machine may be shared; the load average is reported).
    Memory: the evaluator's ``cache_bytes`` and the process's peak resident set.

    Screened evaluation (SENSE's racing, ``DeltaEvaluator.score_screened``): with
    ``screen_images`` > 0, steps of ``neighbours`` candidates are timed both ways in turn, on
    the whole set and screened on ``screen_images`` (or the layer's own slice in
    ``screen_by_layer``, as ``SenseConfig`` has them) with ``confirm`` confirmed (None: the
    network's defaults, ``sense.NETWORK_DEFAULTS``); the *effective*
    rate is neighbours decided per second, and its ratio to the whole-set rate of the same
    steps is measured in the same run.
    """
    import numba

    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    evaluator = DeltaEvaluator(net, images, labels, margin_clip)
    setup_seconds = time.perf_counter() - started
    oracle = ForwardPasses(net, images, labels, margin_clip)
    names = list(evaluator.weights)
    layers = names if layers is None else list(layers)
    defaults = {name: 20 if i == 0 else 500 if i == 1 else 20_000 for i, name in enumerate(names)}
    rng = np.random.default_rng(seed)
    measured = NETWORK_DEFAULTS[net.architecture]
    by_layer = measured["screen_by_layer"] if screen_by_layer is None else screen_by_layer
    confirm = measured["confirm"] if confirm is None else confirm
    result = {"architecture": net.architecture, "images": int(len(images)),
              "threads": numba.get_num_threads(), "setup_seconds": setup_seconds,
              "cache_bytes": evaluator.cache_bytes, "layers": {}}
    for layer in layers:
        count = candidates.get(layer, defaults[layer]) if isinstance(candidates, dict) else \
            int(candidates or defaults[layer])
        src, dst = sample_swaps(evaluator.weights[layer], count, rng)
        evaluator.score(layer, src[:2], dst[:2])                   # compile / load, not timed
        calls, wall, cpu = 0, time.perf_counter(), time.process_time()
        while calls == 0 or time.perf_counter() - wall < seconds_per_layer:
            evaluator.score(layer, src, dst)
            calls += 1
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        oracle_count, oracle_seconds, agrees = 0, 0.0, True
        while oracle_count == 0 or oracle_seconds < seconds_per_layer / 5:
            k = slice(oracle_count, oracle_count + 1)
            t = time.perf_counter()
            expected = oracle.score(layer, src[k], dst[k])
            oracle_seconds += time.perf_counter() - t
            got = evaluator.score(layer, src[k], dst[k])
            agrees &= bool(np.array_equal(got[0], expected[0])
                           and np.array_equal(got[1], expected[1]))
            oracle_count += 1
        evals_per_second = calls * count / wall
        oracle_rate = oracle_count / oracle_seconds
        result["layers"][layer] = {
            "candidates_per_call": count, "calls": calls, "seconds": wall,
            "evals_per_second": evals_per_second, "evals_per_cpu_second": calls * count / cpu,
            "oracle_evals": oracle_count, "oracle_evals_per_second": oracle_rate,
            "speedup_over_oracle": evals_per_second / oracle_rate,
            "agrees_with_oracle": agrees,
        }
        size = by_layer.get(layer, screen_images) if screen_images else 0
        if 0 < size < len(images):
            result["layers"][layer].update(_bench_screened(
                evaluator, layer, neighbours, size, confirm, confirm_stages, seconds_per_layer,
                rng))
    result.update(load_average_before=load_before, load_average_after=os.getloadavg()[0],
                  peak_rss_bytes=_peak_rss_bytes())
    return result


def _bench_screened(evaluator, layer, neighbours, screen_images, confirm, stages, seconds,
                    rng) -> dict:
    """Steps of ``neighbours`` swaps timed whole-set and screened, alternating, for ``seconds``
    each; every screened step's confirmed scores are checked against the whole-set ones."""
    size = -(-screen_images // LANES)
    whole = [0, 0.0]
    screened = [0, 0.0]
    agrees, step = True, 0
    while step < 2 or min(whole[1], screened[1]) < seconds:
        src, dst = sample_swaps(evaluator.weights[layer], neighbours, rng)
        t = time.perf_counter()
        correct, margin = evaluator.score(layer, src, dst)
        whole[0], whole[1] = whole[0] + neighbours, whole[1] + time.perf_counter() - t
        t = time.perf_counter()
        c, m, confirmed = evaluator.score_screened(layer, src, dst, size, confirm, step * size,
                                                   stages=stages)
        screened[0], screened[1] = screened[0] + neighbours, screened[1] + time.perf_counter() - t
        agrees &= bool(np.array_equal(c[confirmed], correct[confirmed])
                       and np.array_equal(m[confirmed], margin[confirmed]))
        step += 1
    return {"step_neighbours": neighbours, "screen_images": min(size * LANES, evaluator.count),
            "confirm": confirm, "confirm_stages": stages, "steps_timed": step,
            "whole_set_step_evals_per_second": whole[0] / whole[1],
            "effective_evals_per_second": screened[0] / screened[1],
            "effective_speedup": (screened[0] / screened[1]) / (whole[0] / whole[1]),
            "screened_agrees_with_whole_set": agrees}


def bench_screening(net, images: np.ndarray, labels: np.ndarray, layer: str, steps: int = 20,
                    neighbours: int = 100, sizes=(640, 1280, 2560, 5120), confirms=(1, 3, 5, 10),
                    seed: int = 0) -> dict:
    """How well a screening slice ranks neighbours: the evidence behind SENSE's S and M.

    Hill-climbs ``layer`` for ``steps`` steps of ``neighbours`` swaps on the fitness images
    (uint8 (n, h, w), labels (n,), in the shuffled order ``sense.Search`` uses), each step scored
    on the whole set (margin fitness, clip = the logits' standard deviation) and the best taken.
    For every slice size S and number confirmed M it counts the steps where the whole-set best
    is among the slice's top M (``best_found``) and where the top M hold an improving neighbour
    (``improvement_found``, against ``improving_steps`` of the whole-set search), and the seconds
    a screened step would take (slice, plus M neighbours on the rest) against a whole-set step.
    """
    clip = max(1, int(round(float(exact_logits(net, images).std()))))
    evaluator = DeltaEvaluator(net, images, labels, clip)
    evaluator.score(layer, *sample_swaps(evaluator.weights[layer], 2, np.random.default_rng(0)))
    table = {(size, m): {"best_found": 0, "improvement_found": 0, "seconds": 0.0}
             for size in sizes for m in confirms if size < len(images)}
    whole = {"improving_steps": 0, "seconds": 0.0}
    load_before = os.getloadavg()[0]
    for t in range(steps):
        src, dst = sample_swaps(evaluator.weights[layer], neighbours,
                                np.random.default_rng([seed, t]))
        started = time.perf_counter()
        _, margin = evaluator.score(layer, src, dst)
        per_neighbour = (time.perf_counter() - started) / neighbours
        whole["seconds"] += per_neighbour * neighbours
        best, current = int(np.argmax(margin)), evaluator.current_score()[1]
        for size in sorted({s for s, _ in table}):
            blocks = -(-size // LANES)
            window, _ = block_window(t * blocks, blocks, evaluator.blocks)
            started = time.perf_counter()
            _, partial = evaluator.score(layer, src, dst, blocks=window)
            slice_seconds = time.perf_counter() - started
            rest = 1 - min(blocks * LANES, len(images)) / len(images)
            order = np.argsort(-partial, kind="stable")
            for m in confirms:
                if (size, m) in table:
                    row, top = table[size, m], order[:m]
                    row["best_found"] += int(best in top)
                    row["improvement_found"] += int(margin[top].max() > current)
                    row["seconds"] += slice_seconds + per_neighbour * m * rest
        if margin[best] > current:
            whole["improving_steps"] += 1
            evaluator.accept(layer, int(src[best]), int(dst[best]))
    rows = [{"screen_images": size, "confirm": m, **row,
             "speedup": whole["seconds"] / max(row["seconds"], 1e-12)}
            for (size, m), row in table.items()]
    return {"layer": layer, "images": int(len(images)), "steps": steps, "neighbours": neighbours,
            "whole_set": whole, "rows": rows, "load_average_before": load_before,
            "load_average_after": os.getloadavg()[0]}


def _peak_rss_bytes() -> int | None:
    try:
        import resource
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024   # Linux: KiB
    except Exception:                                          # not on every platform
        return None


def bench_search_networks(dataset: str = "mnist", data_dir=None, images: int = 10_000,
                          sparsity: float = 80.0, checkpoints=(), seconds_per_layer: float = 5.0,
                          seed: int = 0, screen_images: int = 0, confirm: int | None = None,
                          neighbours: int = 100, screen_by_layer: dict | None = None,
                          confirm_stages: int = 1) -> dict:
    """``bench_search`` on a random ``sparsity``% network and on each checkpoint, with the
    ``images`` fitness images a search of ``dataset`` would score (``sense.fitness_set``: the
    first of the training split, shuffled; 10,000 by default)."""
    data = load_dataset(dataset, data_dir)
    x, y = fitness_set(data, images)
    networks = {f"random {sparsity:g}%": random_network(architecture_for(dataset), sparsity, seed,
                                                        data.train.images[:1000])}
    for path in checkpoints:
        networks[str(path)], _ = checkpoint.load(path, architecture=architecture_for(dataset))
    return {"dataset": dataset, "networks": {
        label: bench_search(net, x, y, seconds_per_layer=seconds_per_layer, seed=seed,
                            neighbours=neighbours, screen_images=screen_images, confirm=confirm,
                            screen_by_layer=screen_by_layer, confirm_stages=confirm_stages)
        for label, net in networks.items()}}
