"""SENSE, Algorithm 2 of the paper (Sections 4.2-4.4): stochastic search and succeed.

Start from a p-SIREN network ("with backprop") or a random sparse ternary one ("without
backprop"). Each *step* samples K first neighbours (bit swaps, ``minisense.swaps``) in the
layer the schedule names, scores them all by delta evaluation (``minisense.fast.delta``), and moves
to the best one if it beats the current network. A layer's counts of -1/0/+1 never change: the
search walks inside one family.

Schedules (which layer step t perturbs):

* ``alternate`` -- every weighted layer in order, ``steps_per_layer`` steps each, the whole round
  repeated ``repeats`` times (Fig. 6: layer1.0, layer2.0, fc, 10 each, 3 times);
* ``fc`` -- only the fully-connected layers (Fig. 7);
* ``random`` -- a random layer for ``steps_per_layer`` steps (the paper: 3 neighbourhoods),
  then another random layer, until the budget ends (Fig. 8); ``layer_weights`` gives a layer
  other odds than 1.

Data discipline beyond the paper (which picked neighbours by test accuracy): the *fitness* is
computed on training images only (the first ``train_images`` of the training split, 0: all), the
*validation* split decides which network is reported as best, and the test split is only
reported. Fitness ``accuracy`` is the paper's; ``margin`` is the mean over images of the integer
margin Z_y - max_{k != y} Z_k clipped to +-``margin_clip`` (by default the standard deviation of
the starting network's logits), which rewards progress before a prediction flips. Accuracy is
always what is reported.

Screened (racing) evaluation, beyond the paper: a step's K neighbours are first scored on a slice
of ``screen_images`` fitness images (a window of image blocks that moves on every step; a layer
may have its own slice in ``screen_by_layer``), and only the ``confirm`` best of them on the rest
(in ``confirm_stages`` pieces, dropping before each piece a neighbour that is behind the current
network on the images seen so far). Slice plus rest is exactly the whole-set score, so a move is
still accepted only when its whole-set fitness beats the current network's, and every recorded
fitness is a whole-set one; with ``screen_images`` = 0 every neighbour is scored on the whole
set, the plain Algorithm 2. Per-layer slices, schedule odds and M left at None are each
network's measured ones (``NETWORK_DEFAULTS``).

Beyond the paper: ``anneal_temperature`` > 0 turns hill climbing into simulated annealing (its
stated future work): a worse best-neighbour is accepted with probability exp(delta / T), delta
the fitness change in units of one image's full margin or accuracy, T halving every
``anneal_half_life`` steps.

Every step's randomness comes from ``default_rng([seed, step])``, so a run killed at any moment
and resumed from its last saved state (``resume``) reaches exactly the network an uninterrupted
run reaches, given the same ``max_steps``. (``budget_seconds`` is a wall-clock limit and so
naturally not reproducible across machines.)
"""

from __future__ import annotations

import io
import json
import pathlib
import time
import zipfile
from dataclasses import asdict, dataclass

import numpy as np

from minisense import checkpoint, files
from minisense.data import architecture_for, load_dataset, majority_baseline
from minisense.errors import MinisenseError
from minisense.fast.delta import DeltaEvaluator
from minisense.fast.kernels import LANES
from minisense.network import Network, build_network, exact_logits
from minisense.psiren import binary_backprop
from minisense.swaps import random_network, sample_swaps

SCHEDULES = ("alternate", "fc", "random")
FITNESSES = ("accuracy", "margin")
FITNESS_ORDER_SEED = 20191  # the fixed shuffle of the fitness images (any value serves)
STATE_FILE = "state.npz"
LOG_FILE = "steps.jsonl"
# Each network's measured settings for the fields a SenseConfig leaves at None (the results book,
# "Screened SENSE" and "Car: SENSE from random"). A first-layer swap changes most images' outputs,
# so 640 images rank its neighbours. On the car, fc1 and fc2 neighbours are cheap on the whole
# set, where a 2,560-frame slice loses a third of fc1's improving ones; fc2 soon has none, so it
# is chosen at odds 1/4; and confirming 10 keeps layer2.0's best neighbour in 29 of 30 steps, 5
# in 21.
NETWORK_DEFAULTS = {
    "mnist": {"screen_by_layer": {"layer1.0": 640}, "layer_weights": {}, "confirm": 5},
    "car": {"screen_by_layer": {"layer1.0": 640, "fc1": 0, "fc2": 0},
            "layer_weights": {"fc2": 0.25}, "confirm": 10},
}


@dataclass
class SenseConfig:
    """The knobs of Algorithm 2 (the paper fixes only the schedules' shapes)."""

    schedule: str = "random"
    neighbours: int = 100                  # K, neighbours sampled per step
    fitness: str = "margin"
    steps_per_layer: int = 3               # E: 10 in Figs. 6-7, 3 in Fig. 8
    repeats: int = 3                       # R, rounds of the alternate schedule
    layers: list | None = None             # these layers ([]: all; None: all but layer1.0)
    layer_weights: dict | None = None      # random schedule: odds of a layer (1; None: measured)
    budget_seconds: float = 600.0
    max_steps: int = 0                     # 0: no limit but the budget (and the schedule)
    train_images: int = 0                  # fitness: the first n training images (0: all)
    margin_clip: int = 0                   # 0: the starting network's logit standard deviation
    anneal_temperature: float = 0.0
    anneal_half_life: float = 1000.0
    screen_images: int = 2560              # S, the screening slice (0: no screening at all)
    screen_by_layer: dict | None = None    # S per layer (None: the network's measured ones)
    confirm: int | None = None             # M, confirmed on the whole set per step (None: measured)
    confirm_stages: int = 1                # > 1: confirm in pieces, dropping early losers
    seed: int = 0

    def validate(self, net: Network) -> None:
        """Check the settings against ``net``, first filling the fields left at None with the
        network's measured defaults (``NETWORK_DEFAULTS``)."""
        for name, value in NETWORK_DEFAULTS[net.architecture].items():
            if getattr(self, name) is None:
                setattr(self, name, value.copy() if isinstance(value, dict) else value)
        if self.schedule not in SCHEDULES:
            raise MinisenseError(f"unknown schedule {self.schedule!r}; choose one of "
                                 f"{', '.join(SCHEDULES)}")
        if self.fitness not in FITNESSES:
            raise MinisenseError(f"unknown fitness {self.fitness!r}; choose accuracy or margin")
        if self.neighbours < 1:
            raise MinisenseError(f"neighbours K must be >= 1, got {self.neighbours}")
        if self.steps_per_layer < 1 or self.repeats < 1:
            raise MinisenseError("steps per layer and repeats must be >= 1")
        for name in self.layers or []:
            if name not in net.weighted:
                raise MinisenseError(f"layer {name!r} is not in the {net.architecture} network; "
                                     f"its layers are {', '.join(net.weighted)}")
        if not self.search_layers(net):
            raise MinisenseError(f"the {self.schedule} schedule has no layer to search among "
                                 f"{', '.join(self.search_layers(net, schedule=False))}; with "
                                 "--schedule fc choose an fc "
                                 "layer, or another schedule")
        for name, value, zero_ok in (("time budget", self.budget_seconds, False),
                                     ("anneal temperature", self.anneal_temperature, True),
                                     ("anneal half-life", self.anneal_half_life, False)):
            if not (isinstance(value, (int, float)) and 0 <= value < float("inf")
                    and (value > 0 or zero_ok)):
                raise MinisenseError(f"the {name} must be a finite number "
                                     f"{'>= 0' if zero_ok else '> 0'}, got {value!r}")
        if not isinstance(self.confirm_stages, int) or self.confirm_stages < 1:
            raise MinisenseError(f"--confirm-stages must be a whole number >= 1, got "
                                 f"{self.confirm_stages!r}")
        if self.screen_images < 0 or self.confirm < 1:
            raise MinisenseError(f"screening needs --screen-images >= 0 (0: off) and --confirm "
                                 f">= 1, got {self.screen_images} and {self.confirm}")
        for name, weight in self.layer_weights.items():
            if name not in net.weighted:
                raise MinisenseError(f"layer {name!r} of --layer-weight is not in the "
                                     f"{net.architecture} network; its layers are "
                                     f"{', '.join(net.weighted)}")
            if not (isinstance(weight, (int, float)) and 0 <= weight < float("inf")):
                raise MinisenseError(f"the weight of {name} must be a number >= 0, got "
                                     f"{weight!r}")
        if self.schedule == "random" and not any(
                self.layer_weights.get(name, 1.0) > 0 for name in self.search_layers(net)):
            raise MinisenseError("every searched layer has weight 0; give one a weight > 0")
        for name, size in self.screen_by_layer.items():
            if name not in net.weighted:
                raise MinisenseError(f"screened layer {name!r} is not in the {net.architecture} "
                                     f"network; its layers are {', '.join(net.weighted)}")
            if not isinstance(size, int) or size < 0:
                raise MinisenseError(f"screening slice of {name} must be an integer >= 0 (0: "
                                     f"not screened), got {size!r}")
        for name in self.search_layers(net):
            counts = net.family()[name]
            if counts["0"] == 0 or counts["0"] == sum(counts.values()):
                raise MinisenseError(f"layer {name} has {counts['0']} zeros of "
                                     f"{sum(counts.values())} weights, so no bit swap exists; "
                                     "choose a sparsity that leaves zeros and nonzeros in it")

    def search_layers(self, net: Network, schedule: bool = True) -> list[str]:
        """The layers the search perturbs: ``layers`` ([]: all), by default all but the first
        conv layer, which then keeps its start: screened, its steps still cost 10-30 times a
        layer2.0 step and were worth less than their time (README). ``schedule``: only those of
        them the schedule visits (``fc``: the fully-connected ones)."""
        names = self.layers or list(net.weighted)
        if self.layers is None:
            names = names[1:]
        if schedule and self.schedule == "fc":
            names = [n for n in names if n.startswith("fc")]
        return names


def fitness_set(data, train_images: int) -> tuple[np.ndarray, np.ndarray]:
    """The fitness images: the first ``train_images`` of the training split (0: all of it), in a
    fixed shuffled order so that any run of blocks is a fair sample for screening (the car's
    frames come episode by episode). Whole-set scores are integer sums over images: the order
    changes none of them. Returns images uint8 (n, h, w), labels (n,)."""
    total = len(data.train.labels)
    n = min(train_images, total) if train_images else total
    order = np.random.default_rng(FITNESS_ORDER_SEED).permutation(n)
    return data.train.images[:n][order], data.train.labels[:n][order]


def layer_at(config: SenseConfig, layers: list[str], step: int) -> str | None:
    """The layer the schedule perturbs at ``step`` (0-based), or None when the schedule is over."""
    block = step // config.steps_per_layer
    if config.schedule == "alternate":
        if block >= len(layers) * config.repeats:
            return None
        return layers[block % len(layers)]
    if config.schedule == "random":
        rng = np.random.default_rng([config.seed, block, 1])
        weights = np.array([(config.layer_weights or {}).get(name, 1.0) for name in layers])
        if (weights == weights[0]).all():                   # the paper's uniform choice
            return layers[rng.integers(len(layers))]
        return layers[rng.choice(len(layers), p=weights / weights.sum())]
    return layers[block % len(layers)]                      # fc: cycle through the fc layers


class Search:
    """A SENSE run in a folder: evaluators, state, records; ``run`` climbs until done.

    After each ``step``, ``neighbourhood`` holds what it looked at: the layer, the candidate
    swaps ``src``/``dst`` (K,), their ``fitness`` (K,) and the index of the ``best``.
    """
    def __init__(self, net: Network, data, config: SenseConfig, out, start: dict | None = None):
        config.validate(net)
        self.config, self.out, self.data = config, pathlib.Path(out), data
        self.layers = config.search_layers(net)
        images, labels = fitness_set(data, config.train_images)
        n = len(labels)
        if not config.margin_clip:
            # (on the images in their stored order: a float sum's rounding depends on it)
            config.margin_clip = max(1, int(round(float(exact_logits(
                net, data.train.images[:n]).std()))))
        self.fit = DeltaEvaluator(net, images, labels, config.margin_clip)
        self.val = DeltaEvaluator(net, data.validation.images, data.validation.labels, 1)
        self.test = DeltaEvaluator(net, data.test.images, data.test.labels, 1)
        self.n_train = n
        self.state = start or {"step": 0, "accepted": 0, "seconds": 0.0, "evaluations": 0,
                               "best_validation": -1.0, "best_step": 0}
        self.best_weights = {k: v.copy() for k, v in self.fit.weights.items()}
        self.template = net
        self.neighbourhood: dict | None = None
        self._recorded = start is not None          # a resumed run has its start record

    # -- fitness -----------------------------------------------------------------------------
    def fitness(self, correct, margin) -> np.ndarray:
        """Fitness per image: accuracy in [0, 1], or mean clipped margin in [-1, 1]."""
        if self.config.fitness == "accuracy":
            return np.asarray(correct, dtype=np.float64) / self.n_train
        return np.asarray(margin, dtype=np.float64) / (self.n_train * self.config.margin_clip)

    def accuracies(self) -> dict:
        return {"train_accuracy": self.fit.current_score()[0] / self.n_train,
                "validation_accuracy": (self.val.current_score()[0]
                                        / len(self.data.validation.labels)),
                "test_accuracy": self.test.current_score()[0] / len(self.data.test.labels)}

    def majority_baseline(self) -> dict:
        """The validation and test splits' majority-class rates, to read accuracies against."""
        return {"validation": majority_baseline(self.data.validation),
                "test": majority_baseline(self.data.test)}

    # -- one step of Algorithm 2 -------------------------------------------------------------
    def screen_size(self, layer: str) -> int:
        """S, the screening slice of ``layer`` in images, or 0 when its neighbours all go on the
        whole set (screening off, a slice not smaller than the set, or M >= K)."""
        cfg = self.config
        size = cfg.screen_by_layer.get(layer, cfg.screen_images) if cfg.screen_images else 0
        return size if 0 < size < self.n_train and cfg.confirm < cfg.neighbours else 0

    def score_neighbours(self, layer: str, src, dst, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Whole-set fitness of the K neighbours ``src``/``dst`` of step ``t``: (fitness (K,),
        confirmed (K,) bool). Unscreened, every neighbour is scored on every fitness image.

        Screened (racing): all K are scored on a slice of ``screen_images`` fitness images (a
        window of blocks that moves on every step, so each image serves as often), the best
        ``confirm`` of them by that partial fitness are scored on the remaining images, and only
        their fitness is whole (the others are NaN). Slice + rest = the whole-set score, exactly:
        a move is judged by the same fitness as without screening.
        """
        if not self.screen_size(layer):
            return self.fitness(*self.fit.score(layer, src, dst)), np.ones(len(src), bool)
        size = -(-self.screen_size(layer) // LANES)
        correct, margin, confirmed = self.fit.score_screened(
            layer, src, dst, screen_blocks=size, confirm=self.config.confirm,
            start_block=t * size, rank_by=self.config.fitness,
            # annealing may take a worse neighbour: none may be dropped for being worse
            stages=1 if self.config.anneal_temperature > 0 else self.config.confirm_stages)
        scores = np.where(confirmed, self.fitness(correct, margin), np.nan)
        return scores, confirmed

    def step(self) -> dict | None:
        cfg, t = self.config, self.state["step"]
        layer = layer_at(cfg, self.layers, t)
        if layer is None:
            return None
        rng = np.random.default_rng([cfg.seed, t])
        src, dst = sample_swaps(self.fit.weights[layer], cfg.neighbours, rng)
        current = float(self.fitness(*self.fit.current_score()))
        scores, confirmed = self.score_neighbours(layer, src, dst, t)
        # The first of equals: deterministic. No confirmed neighbour (staged confirmation dropped
        # them all as behind the current network): no move.
        best = int(np.nanargmax(scores)) if confirmed.any() else -1
        # The neighbourhood just looked at, for whoever draws it (Fig. 5, neighbourhood.climb).
        self.neighbourhood = {"layer": layer, "src": src, "dst": dst, "fitness": scores,
                              "confirmed": confirmed, "best": best}
        delta = float(scores[best]) - current if best >= 0 else -np.inf
        accept = delta > 0
        if not accept and best >= 0 and cfg.anneal_temperature > 0:
            temperature = cfg.anneal_temperature * 0.5 ** (t / cfg.anneal_half_life)
            accept = rng.random() < np.exp(delta * self.n_train / max(temperature, 1e-12))
        if accept:
            for evaluator in (self.fit, self.val, self.test):
                evaluator.accept(layer, int(src[best]), int(dst[best]))
            self.state["accepted"] += 1
        self.state["step"] = t + 1
        self.state["evaluations"] += cfg.neighbours
        record = {"step": t + 1, "layer": layer, "neighbours": cfg.neighbours,
                  "confirmed": int(confirmed.sum()), "accepted": bool(accept),
                  "fitness": current + (delta if accept else 0.0),
                  **self.accuracies()}
        if accept and record["validation_accuracy"] > self.state["best_validation"]:
            self.state["best_validation"] = record["validation_accuracy"]
            self.state["best_step"] = t + 1
            self.best_weights = {k: v.copy() for k, v in self.fit.weights.items()}
        return record

    # -- the loop, with records and atomic saves ---------------------------------------------
    def run(self, on_step=lambda record: None) -> dict:
        """Climb until the schedule ends, ``max_steps`` or the time budget; returns the summary,
        also written to ``summary.json``.

        The run folder is locked for the while (``files.folder_lock``); a failed write (an
        unwritable folder, a full disk) ends the run with a one-line error, its last save intact.
        """
        with files.folder_lock(self.out):
            try:
                return self._climb(on_step)
            except OSError as e:
                raise files.write_error(e.filename or self.out, e) from None

    def _climb(self, on_step) -> dict:
        cfg = self.config
        if self.state["step"] == 0 and not self._recorded:
            if (self.out / STATE_FILE).exists():      # another process started one meanwhile
                raise MinisenseError(f"{self.out} already holds a search; continue it with "
                                     f"--resume {self.out} or choose another --out")
            self._start_record()
            self._recorded = True
        log = open(self.out / LOG_FILE, "a")
        started, base_seconds = time.perf_counter(), self.state["seconds"]
        try:
            while not cfg.max_steps or self.state["step"] < cfg.max_steps:
                elapsed = base_seconds + time.perf_counter() - started
                if elapsed >= cfg.budget_seconds:
                    break
                record = self.step()
                if record is None:
                    break
                self.state["seconds"] = base_seconds + time.perf_counter() - started
                record["seconds"] = self.state["seconds"]
                record["evals_per_second"] = self.state["evaluations"] / max(
                    self.state["seconds"], 1e-9)
                log.write(json.dumps(record) + "\n")
                if record["accepted"]:
                    log.flush()
                    self.save()
                on_step(record)
        finally:
            log.close()
        self.save()
        summary = self.summary()
        files.atomic_write_json(self.out / "summary.json", summary)
        return summary

    def _start_record(self) -> None:
        files.atomic_write_json(self.out / "config.json", asdict(self.config))
        (self.out / LOG_FILE).write_text(json.dumps({"step": 0, "layer": None, "neighbours": 0,
                                                     "accepted": False,
                                                     "fitness": float(self.fitness(
                                                         *self.fit.current_score())),
                                                     **self.accuracies(), "seconds": 0.0}) + "\n")
        self.state["best_validation"] = self.accuracies()["validation_accuracy"]
        self.save()

    def network(self, weights: dict | None = None) -> Network:
        net = build_network(self.template.architecture, 0)
        net.set_ternary(weights or self.fit.weights, self.template.thresholds,
                        self.template.last_gain)
        return net

    def save(self) -> None:
        """The resumable state as ONE file written atomically, then readable checkpoints."""
        arrays = {f"current/{k}": v for k, v in self.fit.weights.items()}
        arrays.update({f"best/{k}": v for k, v in self.best_weights.items()})
        arrays["state"] = np.frombuffer(json.dumps(self.state).encode(), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        files.atomic_write_bytes(self.out / STATE_FILE, buffer.getvalue(), sync=False)
        meta = {"dataset": self.data.name, "search": asdict(self.config), **self.accuracies(),
                "step": self.state["step"]}
        checkpoint.save(self.network(), self.out / "current", meta, sync=False)
        best = self.network(self.best_weights)
        checkpoint.save(best, self.out / "best", {"dataset": self.data.name,
                                                  "step": self.state["best_step"],
                                                  "validation_accuracy":
                                                      self.state["best_validation"]}, sync=False)

    def summary(self) -> dict:
        best = self.network(self.best_weights)
        return {"steps": self.state["step"], "accepted": self.state["accepted"],
                "evaluations": self.state["evaluations"], "seconds": self.state["seconds"],
                "evals_per_second": self.state["evaluations"] / max(self.state["seconds"], 1e-9),
                "current": self.accuracies(), "majority_baseline": self.majority_baseline(),
                "best": {"step": self.state["best_step"],
                         "validation_accuracy": best.accuracy(self.data.validation.images,
                                                              self.data.validation.labels),
                         "test_accuracy": best.accuracy(self.data.test.images,
                                                        self.data.test.labels)}}


def resume(out, data_dir=None, max_steps: int | None = None,
           budget_seconds: float | None = None) -> Search:
    """Re-open a killed or finished run: its config, its last saved state; steps logged after it
    are dropped. ``max_steps`` and ``budget_seconds`` (the total, counted from the run's start)
    replace the saved ones, to extend a run; every other setting is the run's own."""
    out = pathlib.Path(out)
    try:
        # A run saved before screening existed has no screen_images: it searched unscreened.
        config = SenseConfig(**{"screen_images": 0, **json.loads((out / "config.json")
                                                                 .read_text())})
        # current/model.json for what a search never changes (dataset, thresholds, gain), the
        # weights from state.npz: a kill between the two files of current/ loses nothing.
        meta = json.loads((out / "current" / "model.json").read_text())
        dataset = meta["dataset"]
        with np.load(out / STATE_FILE, allow_pickle=False) as f:
            state = json.loads(bytes(f["state"]).decode())
            current = {k.split("/", 1)[1]: f[k] for k in f.files if k.startswith("current/")}
            best = {k.split("/", 1)[1]: f[k] for k in f.files if k.startswith("best/")}
        net = checkpoint.with_weights(meta, current, out / "current" / "model.json")
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as e:
        raise MinisenseError(f"cannot resume from {out}: {type(e).__name__}: {e}; pass the --out "
                             "folder of a search that has saved at least once") from None
    if not (out / LOG_FILE).is_file():
        raise MinisenseError(f"cannot resume from {out}: its {LOG_FILE} is missing; restore it, or "
                             "create an empty one to continue without the earlier records")
    if max_steps is not None:
        config.max_steps = max_steps
    if budget_seconds is not None:
        config.budget_seconds = budget_seconds
    search = Search(net, load_dataset(dataset, data_dir), config, out, start=state)
    search.best_weights = best
    with files.folder_lock(out):
        files.atomic_write_json(out / "config.json", asdict(config))
        kept = [line for line in (out / LOG_FILE).read_text(errors="replace").splitlines()
                if _logged_step(line) <= state["step"]]
        files.atomic_write_bytes(out / LOG_FILE,
                                      "".join(line + "\n" for line in kept).encode())
    return search


def _logged_step(line: str) -> float:
    """The step of one ``steps.jsonl`` line; infinity for a line cut short by a crash or a full
    disk (it can only be the last, and is dropped with the steps after the saved state)."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return float("inf")


def initial_network(seed: int, dataset: str | None = None, from_checkpoint=None,
                    sparsity: float | None = None, data_dir=None) -> tuple[Network, object]:
    """The starting point of Algorithm 2 and its data: a p-SIREN checkpoint, or a random network
    of ``sparsity`` percent zeros per layer drawn from ``seed`` (thresholds calibrated on
    training images). The backprop comparison line starts from exactly the same network.
    ``dataset`` defaults to the checkpoint's, and for a random network to digits."""
    if (from_checkpoint is None) == (sparsity is None):
        raise MinisenseError("start from either a checkpoint (--checkpoint) or a random network "
                             "(--init random --sparsity P), not both or neither")
    if from_checkpoint is not None:
        _, meta = checkpoint.load(from_checkpoint)
        dataset = dataset or meta.get("dataset")
        if meta.get("dataset") not in (None, dataset):
            raise MinisenseError(f"checkpoint {from_checkpoint} was trained on "
                                 f"{meta.get('dataset')}, not {dataset}; pass a {dataset} "
                                 "checkpoint or --dataset " + str(meta.get("dataset")))
    if dataset is None and from_checkpoint is not None:
        raise MinisenseError(f"checkpoint {from_checkpoint} names no dataset: pass --dataset")
    if from_checkpoint is not None:
        net, _ = checkpoint.load(from_checkpoint, architecture=architecture_for(dataset))
        return net, load_dataset(dataset, data_dir)
    if not 0 < sparsity < 100:
        raise MinisenseError(f"sparsity {sparsity} is outside (0, 100); give the percent of "
                             "zero weights, e.g. --sparsity 80")
    data = load_dataset(dataset or "digits", data_dir)
    return random_network(architecture_for(data.name), sparsity, seed,
                          data.train.images[:1000]), data


def default_out(dataset: str | None, seed: int, backprop: bool = False) -> pathlib.Path:
    """Where a search (or its backprop line) writes when no folder is given."""
    kind = "backprop" if backprop else "search"
    return pathlib.Path("runs") / f"{kind}-{dataset or 'ckpt'}-s{seed}"


def start(config: SenseConfig, out, dataset: str | None = None, from_checkpoint=None,
          sparsity: float | None = None, data_dir=None) -> Search:
    """A new search in ``out`` from :func:`initial_network`."""
    with files.folder_lock(out):        # fail fast: writable, and no other writer now
        pass
    net, data = initial_network(config.seed, dataset, from_checkpoint, sparsity, data_dir)
    if (pathlib.Path(out) / STATE_FILE).exists():
        raise MinisenseError(f"{out} already holds a search; continue it with --resume {out} or "
                             "choose another --out")
    return Search(net, data, config, out)


BACKPROP_FILE = "backprop.jsonl"


def backprop_line(config: SenseConfig, out, dataset: str | None = None, from_checkpoint=None,
                  sparsity: float | None = None, data_dir=None, lr: float = 0.01,
                  on_record=lambda record: None) -> dict:
    """The paper's comparison for SENSE (Section 4.4, Figs. 6-8): binary backprop fine-tuning
    (Algorithm 1's step 4, ``psiren.binary_backprop``) from the very network ``start`` would
    search from, for the same ``budget_seconds`` (or ``max_steps`` batches). One JSON line per
    evaluation in ``out/backprop.jsonl``, validation and test accuracy as SENSE reports them;
    returns the summary written to ``out/summary.json``: the first, last and best-by-validation
    records."""
    out = pathlib.Path(out)
    with files.folder_lock(out):
        if (out / BACKPROP_FILE).exists():
            raise MinisenseError(f"{out} already holds a backprop line; choose another --out")
        net, data = initial_network(config.seed, dataset, from_checkpoint, sparsity, data_dir)
        with open(out / BACKPROP_FILE, "w") as log:
            def record(r):
                log.write(json.dumps(r) + "\n")
                log.flush()
                on_record(r)
            records = binary_backprop(net, data, config.budget_seconds, lr=lr, seed=config.seed,
                                      max_batches=config.max_steps, on_record=record)
        summary = {"method": "backprop", "lr": lr, "config": asdict(config),
                   "first": records[0], "last": records[-1],
                   "best_by_validation": max(records, key=lambda r: r["validation_accuracy"])}
        files.atomic_write_json(out / "summary.json", summary)
    return summary
