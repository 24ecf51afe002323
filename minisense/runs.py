"""Run folders of SENSE (Algorithm 2): starting networks, a search kept on disk, resume.

* Starting networks: a p-SIREN checkpoint ("with backprop"), or a random p-sparse ternary network
  ("without backprop", Section 4.4) with thresholds calibrated on training images.
* :class:`SearchRun`: a ``sense.Search`` kept in a folder: ``steps.jsonl`` (every step's
  record), ``current/`` and ``best/`` (checkpoints), ``config.json`` (the resolved settings),
  ``summary.json`` and the resumable ``state.npz``, saved atomically after every accepted move.
* :func:`resume` continues a killed or finished run from its last saved state: every step's
  randomness comes from its seed and step number, so it reaches exactly the network an
  uninterrupted run reaches.
* :func:`backprop_line`: the paper's comparison, binary backprop from the same start, its
  best-by-validation and last networks kept as ``best/`` and ``last/`` checkpoints.
"""

from __future__ import annotations

import io
import json
import pathlib
import zipfile
from dataclasses import asdict, fields, replace

import numpy as np

from minisense import checkpoint, files
from minisense.data import (
    MIRRORED_CLASSES,
    architecture_for,
    check_frame_kind,
    frame_meta,
    load_dataset,
)
from minisense.errors import MinisenseError
from minisense.network import Network, binary_network, build_network, exact_logits, family
from minisense.psiren import binary_backprop
from minisense.sense import MAX_COUNT, Search, SenseConfig
from minisense.swaps import random_ternary

STATE_FILE = "state.npz"
# Which network ``search`` hands back: the best by validation, or where the climb ended (which
# keeps climbing the fitness after validation has stopped rising: DAgger's later rounds).
KEEP = ("best", "last")
LOG_FILE = "steps.jsonl"
BACKPROP_FILE = "backprop.jsonl"


# -- starting networks ----------------------------------------------------------------------------

def calibrate_thresholds(net: Network, weights: dict[str, np.ndarray],
                         images: np.ndarray) -> dict[str, int]:
    """Integer thresholds for a random ternary network: T_l = the standard deviation of layer l's
    integer pre-activations on ``images`` (training images), layer by layer, at least 1.

    A random network has no float weights to take a scale from (``network.binarize``); this puts
    each HardTanh's linear region where that layer's inputs actually fall.
    """
    names = list(net.weighted)
    thresholds: dict[str, int] = {}
    for name in names[:-1]:
        # Later thresholds do not affect this layer's pre-activations: any value serves there.
        probe = net.with_ternary(weights, {n: thresholds.get(n, 1) for n in names[:-1]}, 1.0)
        z = exact_logits(probe, images, stop_after=name)
        thresholds[name] = max(1, int(round(float(z.std()))))
    return thresholds


def random_network(architecture: str, sparsity: float, seed: int,
                   calibration_images: np.ndarray, engine: str = "fast") -> Network:
    """A random p-sparse ternary network (every layer p% zeros, signs at random) with thresholds
    calibrated on ``calibration_images`` (uint8 (n, h, w), training images)."""
    rng = np.random.default_rng(seed)
    net = build_network(architecture, rng, engine)
    weights = {name: random_ternary(layer.weight.shape, sparsity, rng)
               for name, layer in net.weighted.items()}
    thresholds = calibrate_thresholds(net, weights, calibration_images)
    # The last gain only scales the logits for a softmax (the backprop comparison of Section 4.4):
    # 1/sqrt(fan-in count) keeps them near unit size, as H/T is at most 1.
    fan_in = np.abs(weights[list(weights)[-1]]).reshape(net.num_classes, -1).sum(axis=1).mean()
    return net.with_ternary(weights, thresholds, 1.0 / np.sqrt(max(1.0, float(fan_in))))


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
        net, meta = checkpoint.load(from_checkpoint, architecture=architecture_for(dataset))
        data = load_dataset(dataset, data_dir)
        check_frame_kind(meta, data.frame_kind, checkpoint.checkpoint_paths(from_checkpoint)[1])
        return net, data
    if not 0 < sparsity < 100:
        raise MinisenseError(f"sparsity {sparsity} is outside (0, 100); give the percent of "
                             "zero weights, e.g. --sparsity 80")
    data = load_dataset(dataset or "digits", data_dir)
    return random_network(architecture_for(data.name), sparsity, seed,
                          data.train.images[:1000]), data


def check_options(config: SenseConfig, dataset: str | None = None,
                  from_checkpoint=None) -> None:
    """One-line errors for settings given that would have no effect on the network a search
    starts from (the checkpoint's architecture, else the dataset's, else digits'): layer odds
    (``layer_weights``) with a schedule that ignores them or for a layer not searched, and a
    screening slice (``screen_by_layer``) of a layer not searched. Call it on the caller's
    config, before ``resolve`` fills in the measured defaults."""
    if from_checkpoint is not None:
        architecture = checkpoint.read_meta(checkpoint.checkpoint_paths(from_checkpoint)[1])[
            "architecture"]
    else:
        architecture = architecture_for(dataset or "digits")
    config.check_types()
    if config.layer_weights and config.schedule != "random":
        raise MinisenseError(f"--layer-weight sets the random schedule's odds; the "
                             f"{config.schedule} schedule ignores them: drop it or use "
                             "--schedule random")
    if config.redraw_steps is not None and not config.redraws:
        raise MinisenseError("--redraw-steps draws shifted, mirrored or subsampled fitness images "
                             "afresh, but this search has none (--shift-pixels 0, no --mirror, "
                             "--subsample 1: the defaults): drop it or give --shift-pixels N > 0, "
                             "--mirror or --subsample F < 1")
    if config.mirror and architecture not in {architecture_for(d) for d in MIRRORED_CLASSES}:
        raise MinisenseError(f"--mirror needs classes that have mirror images (carracing: left "
                             f"<-> right), not the {architecture} network's: drop --mirror")
    net = build_network(architecture, 0)
    searched = config.search_layers(net)
    for option, names in (("--layer-weight", config.layer_weights or {}),
                          ("--screen", config.screen_by_layer or {})):
        idle = [name for name in names if name in net.weighted and name not in searched]
        if idle:
            raise MinisenseError(f"{option} names {', '.join(idle)}, which this search does not "
                                 f"search (it searches {', '.join(searched)}): drop it, or add "
                                 "--layer for it")


def default_out(dataset: str | None, seed: int, backprop: bool = False) -> pathlib.Path:
    """Where a search (or its backprop line) writes when no folder is given."""
    kind = "backprop" if backprop else "search"
    return pathlib.Path("runs") / f"{kind}-{dataset or 'ckpt'}-s{seed}"


# -- a search in a folder -------------------------------------------------------------------------

class SearchRun(Search):
    """A :class:`minisense.sense.Search` kept in the folder ``out`` (module docstring): the same
    steps and records, each written to ``steps.jsonl``, the state saved after every move."""

    def __init__(self, net: Network, data, config: SenseConfig, out, start: dict | None = None):
        super().__init__(net, data, config, start)
        self.out = pathlib.Path(out)
        self._log = None
        self._fresh = start is None                 # a resumed run has its start record

    def run(self, on_step=lambda record: None) -> dict:
        """:meth:`Search.run` with every record written and the state saved after each move;
        returns the summary, also written to ``summary.json``.

        The run folder is locked for the while (``files.folder_lock``); a failed write (an
        unwritable folder, a full disk) ends the run with a one-line error, its last save intact.
        """
        with files.folder_lock(self.out):
            try:
                return self._run_in_folder(on_step)
            except OSError as e:
                raise files.write_error(e.filename or self.out, e) from None

    def _run_in_folder(self, on_step) -> dict:
        if self._fresh:
            if (self.out / STATE_FILE).exists():      # another process started one meanwhile
                raise MinisenseError(f"{self.out} already holds a search; continue it with "
                                     f"--resume {self.out} or choose another --out")
            files.atomic_write_json(self.out / "config.json", self.settings())
            (self.out / LOG_FILE).write_text(json.dumps(self.history[0]) + "\n")
            self.save()
            self._fresh = False
        with open(self.out / LOG_FILE, "a") as self._log:
            summary = super().run(on_step)
        self.save()
        files.atomic_write_json(self.out / "summary.json", summary)
        return summary

    def recorded(self, record: dict) -> None:
        super().recorded(record)
        self._log.write(json.dumps(record) + "\n")
        if record["accepted"]:
            self._log.flush()
            self.save()

    def save(self) -> None:
        """The resumable state as ONE file written atomically, then readable checkpoints."""
        arrays = {f"current/{k}": v for k, v in self.fit.weights.items()}
        arrays.update({f"best/{k}": v for k, v in self.best_weights.items()})
        record = {**self.state, "dataset": self.data.name}        # checked by resume
        arrays["state"] = np.frombuffer(json.dumps(record).encode(), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        files.atomic_write_bytes(self.out / STATE_FILE, buffer.getvalue(), sync=False)
        meta = {"dataset": self.data.name, "search": asdict(self.config), **self.accuracies(),
                "step": self.state["step"], **frame_meta(self.data)}
        checkpoint.save(self.network(), self.out / "current", meta, sync=False, force=True)
        checkpoint.save(self.network(self.best_weights), self.out / "best",
                        {"dataset": self.data.name, "step": self.state["best_step"],
                         "validation_accuracy": self.state["best_validation"],
                         **frame_meta(self.data)}, sync=False,
                        force=True)


def start(config: SenseConfig, out, dataset: str | None = None, from_checkpoint=None,
          sparsity: float | None = None, data_dir=None) -> SearchRun:
    """A new search in ``out`` from :func:`initial_network`; ``out`` must not hold a run of
    another kind (``files.check_run_folder``)."""
    files.check_run_folder(out, "search")
    with files.folder_lock(out):        # fail fast: writable, and no other writer now
        pass
    net, data = initial_network(config.seed, dataset, from_checkpoint, sparsity, data_dir)
    if (pathlib.Path(out) / STATE_FILE).exists():
        raise MinisenseError(f"{out} already holds a search; continue it with --resume {out} or "
                             "choose another --out")
    return SearchRun(net, data, config, out)


def search(net: Network, data, config: SenseConfig | None = None, *, out=None,
           on_step=lambda record: None, keep: str = "best") -> tuple[Network, list[dict]]:
    """Algorithm 2 from the binary network ``net`` on ``data`` (a ``minisense.data.Dataset``),
    until ``config``'s time budget, ``max_steps`` or schedule ends (default: ``SenseConfig()``).
    Exported as ``minisense.search``.

    Returns the best network by validation (``keep="best"``) or the climb's last network
    (``keep="last"``), and the history: one record per step (the start's first), also passed to
    ``on_step`` as it is made. Nothing is written unless ``out`` names a
    folder, which then holds the run as ``minisense search --out`` writes it (resumable by
    :func:`resume`; a folder already holding a search is refused).
    """
    config = SenseConfig() if config is None else config
    if keep not in KEEP:
        raise MinisenseError(f"keep must be one of {', '.join(KEEP)}, got {keep!r}")
    if out is None:
        run = Search(net, data, config)
    else:
        files.check_run_folder(out, "search")
        run = SearchRun(net, data, config, out)
    run.run(on_step)
    return run.network(run.best_weights if keep == "best" else None), run.history


def resume(out, data_dir=None, max_steps: int | None = None,
           budget_seconds: float | None = None) -> SearchRun:
    """Re-open a killed or finished run: its config, its last saved state; steps logged after it
    are dropped. ``max_steps`` and ``budget_seconds`` (the total, counted from the run's start)
    replace the saved ones, to extend a run; every other setting is the run's own.

    Everything read back is checked first (one-line errors, nothing written): ``config.json``'s
    fields and their types and ranges (``SenseConfig.check_types``), ``current/model.json``
    (``checkpoint.read_meta``), the state record's fields and ranges (:func:`check_state`), and
    ``state.npz``'s arrays: the network's layers, int8 of their shapes in {-1, 0, +1}, current and
    best of one family, on the run's dataset."""
    out = pathlib.Path(out)
    if not (out / STATE_FILE).is_file():
        raise MinisenseError(f"cannot resume from {out}: it holds no {STATE_FILE}; pass the --out "
                             "folder of a search that has saved at least once")
    config = read_config(out / "config.json")
    # current/model.json for what a search never changes (dataset, thresholds, gain), the
    # weights from state.npz: a kill between the two files of current/ loses nothing.
    meta = checkpoint.read_meta(out / "current" / "model.json")
    state, current, best = read_state(out / STATE_FILE)
    where = f"search state {out / STATE_FILE}"
    for part, weights in (("current", current), ("best", best)):
        checkpoint.check_weights(weights, meta["architecture"], f"{where} ({part})")
    dataset = meta.get("dataset")
    if dataset is None or state.pop("dataset", dataset) != dataset:
        raise MinisenseError(f"cannot resume from {out}: current/model.json names dataset "
                             f"{dataset!r}, not the run's; restore current/ from the run")
    best_meta = out / "best" / "model.json"
    if best_meta.is_file() and checkpoint.read_meta(best_meta).get("dataset") != dataset:
        raise MinisenseError(f"cannot resume from {out}: best/ and current/ name other datasets; "
                             "restore them from the run")
    if _families(current) != _families(best) or (
            isinstance(meta.get("family"), dict) and meta["family"] != _families(current)):
        raise MinisenseError(f"cannot resume from {out}: the current and best networks of "
                             f"{STATE_FILE} are not of the run's family (a search never changes "
                             "a layer's counts of -1/0/+1); restore the run's files")
    net = checkpoint.with_weights(meta, current, out / "current" / "model.json")
    config.resolve(net)                          # its settings fit the network
    check_state(state, config, where)
    if not (out / LOG_FILE).is_file():
        raise MinisenseError(f"cannot resume from {out}: its {LOG_FILE} is missing; restore it, or "
                             "create an empty one to continue without the earlier records")
    extended = {k: v for k, v in (("max_steps", max_steps), ("budget_seconds", budget_seconds))
                if v is not None}
    search = SearchRun(net, load_dataset(dataset, data_dir), replace(config, **extended), out,
                       start=state)
    search.best_weights = best
    with files.folder_lock(out):
        files.atomic_write_json(out / "config.json", search.settings())
        kept = [line for line in (out / LOG_FILE).read_text(errors="replace").splitlines()
                if _logged_step(line) <= state["step"]]
        files.atomic_write_bytes(out / LOG_FILE, "".join(line + "\n" for line in kept).encode())
    return search


# The settings added after the first runs were saved, as those runs searched.
LEGACY_SETTINGS = {"screen_images": 0, "screen_by_layer": {}, "confirm": None,
                   "confirm_stages": 1, "layer_weights": {}, "engine": "fast",
                   "shift_pixels": 0, "redraw_steps": 1000, "mirror": False,
                   "margin_scale": 1.0, "subsample": 1.0}


def read_config(path) -> SenseConfig:
    """A run's ``config.json`` as a :class:`SenseConfig`, its fields' types and ranges checked
    (their fit to the network: ``SenseConfig.resolve``)."""
    try:
        saved = json.loads(pathlib.Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise MinisenseError(f"cannot resume: {path} is unreadable ({type(e).__name__}: {e}); "
                             "restore the run's config.json") from None
    names = {f.name for f in fields(SenseConfig)}
    if not isinstance(saved, dict):
        raise MinisenseError(f"cannot resume: {path} holds {type(saved).__name__}, not the "
                             "run's settings; restore the run's config.json")
    # A run saved before a setting existed searched without it: unscreened, uniform odds.
    saved = {**LEGACY_SETTINGS, **saved}
    if set(saved) != names:
        odd = sorted(set(saved) ^ names)
        raise MinisenseError(f"cannot resume: {path} lacks or has unknown settings "
                             f"{', '.join(odd)}; restore the run's config.json")
    config = SenseConfig(**saved)
    try:
        config.check_types()
    except MinisenseError as e:
        raise MinisenseError(f"cannot resume: {path}: {e}") from None
    return config


MAX_SECONDS = 1e9                # of search saved in a state: 31 years
STATE_FIELDS = {"step": int, "accepted": int, "seconds": float, "evaluations": int,
                "best_validation": float, "best_step": int}


def read_state(path) -> tuple[dict, dict, dict]:
    """``state.npz``: the state record (a dict, fields unchecked: :func:`check_state`) and the
    current and best weights (name -> array, unchecked: ``checkpoint.check_weights``)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = list(f.files)
            raw = f["state"] if "state" in keys else None
            current = {k.split("/", 1)[1]: f[k] for k in keys if k.startswith("current/")}
            best = {k.split("/", 1)[1]: f[k] for k in keys if k.startswith("best/")}
        odd = [k for k in keys if k != "state" and not k.startswith(("current/", "best/"))]
        if raw is None or odd or raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError(f"arrays {keys}: needs a uint8 'state' and current/ and best/ layers")
        state = json.loads(raw.tobytes().decode())
    except (OSError, ValueError, KeyError, TypeError, EOFError, RecursionError,
            zipfile.BadZipFile) as e:
        raise MinisenseError(f"cannot resume from {path}: {type(e).__name__}: {e}; pass the --out "
                             "folder of a search that has saved at least once") from None
    if not isinstance(state, dict):
        raise MinisenseError(f"cannot resume from {path}: its state record is not a record; "
                             "restore the run's state.npz")
    return state, current, best


def check_state(state: dict, config: SenseConfig, where) -> None:
    """One-line errors unless the state record has exactly ``STATE_FIELDS`` (and a "dataset"
    name), of their types, in their ranges: 0 <= accepted, best_step <= step <= the step bound,
    evaluations = step x K, 0 <= seconds <= ``MAX_SECONDS``, best_validation in [0, 1]."""
    given = set(state) - {"dataset"}
    if given != set(STATE_FIELDS):
        odd = sorted(given ^ set(STATE_FIELDS))
        raise MinisenseError(f"{where}: the state record lacks or has unknown fields "
                             f"{', '.join(odd)}; restore the run's state.npz")
    for name, kind in STATE_FIELDS.items():
        value = state[name]
        ok = not isinstance(value, bool) and isinstance(value, (int, float) if kind is float
                                                        else int)
        if not ok or not 0 <= value < float("inf"):
            raise MinisenseError(f"{where}: {name} is {value!r}, not a "
                                 f"{'finite number' if kind is float else 'whole number'} >= 0; "
                                 "restore the run's state.npz")
    step = state["step"]
    bounds = {"step": (step, MAX_COUNT), "seconds": (state["seconds"], MAX_SECONDS),
              "accepted": (state["accepted"], step),
              "best_step": (state["best_step"], step), "best_validation":
              (state["best_validation"], 1)}
    for name, (value, bound) in bounds.items():
        if value > bound:
            raise MinisenseError(f"{where}: {name} is {value}, above its bound {bound}; restore "
                                 "the run's state.npz")
    if state["evaluations"] != step * config.neighbours:
        raise MinisenseError(f"{where}: evaluations is {state['evaluations']}, not step x K = "
                             f"{step * config.neighbours}; restore the run's state.npz")


def _families(weights: dict) -> dict:
    return {name: family(w) for name, w in sorted(weights.items())}


def _logged_step(line: str) -> float:
    """The step of one ``steps.jsonl`` line; infinity for a line cut short by a crash or a full
    disk (it can only be the last, and is dropped with the steps after the saved state) or
    otherwise not a record with a whole-number step."""
    try:
        step = json.loads(line)["step"]
    except (ValueError, KeyError, TypeError, IndexError, RecursionError):
        return float("inf")
    return step if isinstance(step, int) and not isinstance(step, bool) else float("inf")


def backprop_line(config: SenseConfig, out, dataset: str | None = None, from_checkpoint=None,
                  sparsity: float | None = None, data_dir=None, lr: float = 0.01,
                  on_record=lambda record: None) -> dict:
    """The paper's comparison for SENSE (Section 4.4, Figs. 6-8): binary backprop fine-tuning
    (Algorithm 1's step 4, ``psiren.binary_backprop``) from the very network ``start`` would
    search from, for the same ``budget_seconds`` (or ``max_steps`` batches), in the config's
    engine. One JSON line per evaluation in ``out/backprop.jsonl``, validation and test accuracy
    as SENSE reports them; the network of the best-by-validation record in ``out/best/`` (saved
    whenever validation rises, as a search's) and the last in ``out/last/``, so the line's
    networks can be driven or compared as the search's; returns the summary written to
    ``out/summary.json``: the first, last and best-by-validation records."""
    out = pathlib.Path(out)
    files.check_run_folder(out, "backprop line")
    with files.folder_lock(out):
        if (out / BACKPROP_FILE).exists():
            raise MinisenseError(f"{out} already holds a backprop line; choose another --out")
        net, data = initial_network(config.seed, dataset, from_checkpoint, sparsity, data_dir)
        net = binary_network(net.architecture, net.ternary_weights(), net.thresholds,
                             net.last_gain, config.engine)
        best = {"validation_accuracy": -1.0}

        def save(part, r):
            checkpoint.save(net, out / part, {"dataset": data.name, "backprop": r,
                                              **frame_meta(data)}, sync=False, force=True)

        try:
            with open(out / BACKPROP_FILE, "w") as log:
                def record(r):
                    log.write(json.dumps(r) + "\n")
                    log.flush()
                    if r["validation_accuracy"] > best["validation_accuracy"]:
                        best.update(r)
                        save("best", r)
                    on_record(r)
                records = binary_backprop(net, data, config.budget_seconds, lr=lr,
                                          seed=config.seed, max_batches=config.max_steps,
                                          on_record=record)
                save("last", records[-1])
        except OSError as e:
            raise files.write_error(e.filename or out / BACKPROP_FILE, e) from None
        summary = {"method": "backprop", "lr": lr, "config": asdict(config),
                   "first": records[0], "last": records[-1],
                   "best_by_validation": max(records, key=lambda r: r["validation_accuracy"])}
        files.atomic_write_json(out / "summary.json", summary)
    return summary
