"""DAgger on the car: the network drives, the expert labels what it sees, training repeats.

Ross, Gordon and Bagnell (2011), "A Reduction of Imitation Learning and Structured Prediction to
No-Regret Online Learning" (AISTATS), Algorithm 3.1 (DAgger). A network trained on the expert's
own demonstrations has never seen the states its own mistakes lead to; DAgger collects exactly
those states and asks the expert what to do there:

    D <- the expert's recording; pi_0 <- train on D                     (the start)
    for round r = 0, 1, ..., R-1:
        pi_mix = beta_r * expert + (1 - beta_r) * pi_r,  beta_r = beta0 * decay^r
        drive N episodes with pi_mix on fresh tracks; the expert labels every visited frame
        D <- D + those frames (training episodes only)
        pi_{r+1} <- train on D

``beta_r`` is per step: with that probability the expert's action is executed, otherwise the
network's; the label is always the expert's (``beta0`` = 0, the default, is pure DAgger with the
network driving). Training is p-SIREN from scratch on the aggregate (Algorithm 1, the default),
p-SIREN's step 4 continued from the last network (``psiren-step4``: Algorithm 1 once for the
start, then each round straight-through fine-tuning of the last ternary network, its mask fixed),
or SENSE continued from the last network (Algorithm 2: no gradient anywhere). A SENSE round
hands on its search's best network by validation frames (``sense_keep="best"``) or the network
where its climb ended (``"last"``): validation frames are the expert's own driving, and once no
step beats them every later round would hand on the same network, however many frames DAgger
adds.

A round may keep only the frames near where the car first left the road (``near_departure``
steps either side; none from a track it stayed on), each ``repeat_kept`` times: a network that
leaves the road on one track in eight loses most of its return there, and among all of a round's
frames those few states weigh next to nothing in the fitness.

The network may drive with a logit offset (``logit_offset``, ``car drive --logit-offset``:
post-hoc logit adjustment, added to its real logits before the argmax): the round then visits
the states the adjusted network reaches (faster, with more gas at the speed cap), which the
expert labels as always; the training is unchanged, and the offset is for driving the rounds'
networks afterwards as well.

An ensemble (``members`` > 1, the paper's future work: a family ensemble, ``minisense.ensemble``)
drives as one network, by summed logits; every member is trained again on the same aggregate,
each from its own seed (p-SIREN) or from its own last network (SENSE).

The run folder ``out``:

    dagger.json            the settings (a rerun with other settings is refused)
    start/                 the network before round 0 (model.npz + model.json)
    round-RRR/episodes.npz the frames round r collected (as a recording's arrays)
    round-RRR/model.npz    the network after round r (+ model.json); an ensemble's members
                           in round-RRR/member-K/ (and start/member-K/), K = 0, 1, ...
    rounds.jsonl           one line per finished round
    data/carracing.npz     the aggregate recording (+ carracing.json): the input recording's
                           episodes, then each round's as training episodes; ``--dataset
                           carracing --data-dir out/data`` reads it
    summary.json           the last round's record and the final checkpoint

A killed run resumes by running the same command again: finished rounds are kept and the next
one starts from its beginning. Every round's tracks, coin flips and training seed come from the
run's seed and the round number, so a resumed run reaches the same network as an uninterrupted
one (with SENSE, when ``sense_steps`` ends each search before its time budget).
"""

from __future__ import annotations

import hashlib
import io
import json
import pathlib
import time
import zipfile
from dataclasses import asdict
from os import PathLike

import numpy as np

from minisense import car, checkpoint, ensemble, files
from minisense.data import (
    FILE_STEM,
    SPLITS,
    check_frame_kind,
    frame_kind_in,
    frame_meta,
    load_dataset,
)
from minisense.errors import MinisenseError
from minisense.expert import ACTIONS, CLASSES, DEFAULT_EXPERT, expert_config, label
from minisense.fast.shards import one_blas_thread
from minisense.psiren import PsirenConfig, config_for, continue_binary, psiren
from minisense.runs import KEEP, random_network, search
from minisense.sense import MAX_SEED, SenseConfig

TRAINERS = ("psiren", "psiren-step4", "sense")
MAX_MEMBERS = 64
# Settings added after runs were made with the ones before: what an older dagger.json meant.
LATER_SETTINGS = {"members": 1, "sense_keep": "best", "near_departure": 0, "repeat_kept": 1,
                  "frame_kind": "grey", "logit_offset": None}
MAX_REPEAT = 100
SETTINGS_FILE = "dagger.json"
ROUNDS_FILE = "rounds.jsonl"
# DAgger's tracks are drawn from here up: recordings use seeds 0, 1, ... and car drive 1000, ...
FIRST_TRACK_SEED = 10 ** 6
MAX_ROUNDS = 1000
# What a round's seed is for (the third key of its generator).
TRACKS, COINS, TRAINING = 0, 1, 2


def round_seed(seed: int, round_: int, purpose: int, member: int = 0) -> int:
    """A seed in 0..2^32-2 for one purpose of one round (``round_`` -1: the start) and one
    ensemble member, from the run's ``seed`` alone: the same round gets the same seeds in a
    resumed run. Member 0's is that of a single network."""
    key = [seed, round_ + 1, purpose] + ([member] if member else [])
    return int(np.random.default_rng(key).integers(MAX_SEED))


def track_seeds(seed: int, round_: int, episodes: int) -> list[int]:
    """The CarRacing seeds round ``round_`` drives: fresh training tracks, none of a recording's
    (0, 1, ...) nor of ``car drive``'s evaluation (1000, ...)."""
    rng = np.random.default_rng(round_seed(seed, round_, TRACKS))
    return [int(s) for s in rng.integers(FIRST_TRACK_SEED, MAX_SEED + 1, episodes)]


def beta(beta0: float, decay: float, round_: int) -> float:
    """beta_r = beta0 * decay^r: the chance that the expert's action is executed at a step."""
    return float(beta0 * decay ** round_)


# -- one round's driving --------------------------------------------------------------------------

def mixed_policy(net, config, beta_r: float, rng: np.random.Generator, counts: dict,
                 kind: str = "grey", logit_offset=None):
    """A ``car.run_episode`` policy: the expert labels every step; with probability ``beta_r``
    its action is executed, else the network's (``net``: a network or an ensemble's list, seeing
    frames of ``kind``, deciding with ``logit_offset`` as ``car.network_policy``). ``counts``
    tallies the steps the expert drove and those where the network agreed with it."""
    network = car.network_policy(net, kind, logit_offset)

    def policy(env, observation):
        wanted = label(env, config)                  # the label, whoever drives
        _, chosen = network(env, observation)
        counts["agree"] += int(chosen == wanted)
        if rng.random() < beta_r:
            counts["expert"] += 1
            chosen = wanted
        return ACTIONS[chosen], wanted
    return policy


def kept_frames(steps: np.ndarray, first_off_road, near: int) -> np.ndarray:
    """Which frames (by ``steps``) a round keeps of an episode: all with ``near`` = 0, else those
    within ``near`` steps of the car first leaving the road (none if it never did); why: the
    module docstring."""
    if not near:
        return np.ones(len(steps), bool)
    if first_off_road is None:
        return np.zeros(len(steps), bool)
    return np.abs(steps - first_off_road) <= near


def _episode(args) -> dict:
    """One DAgger episode (a worker's job): frames from step ZOOM_STEPS on, as ``car.record``;
    with ``near`` > 0 only those near the first departure (:func:`kept_frames`), each kept
    ``repeat`` times."""
    models, track, coin_seed, beta_r, config, max_steps, near, repeat, kind, offset = args
    net = [checkpoint.load(m, architecture="car")[0] for m in models]
    frames, labels, steps = [], [], []
    counts = {"agree": 0, "expert": 0}

    def keep(step, observation, cls, env):
        if step >= car.ZOOM_STEPS:
            frames.append(car.network_frame(env, observation, kind))
            labels.append(cls)
            steps.append(step)

    policy = mixed_policy(net, config, beta_r, np.random.default_rng(coin_seed), counts, kind,
                          offset)
    with one_blas_thread():
        run = car.run_episode(track, policy, render=True, max_steps=max_steps, on_frame=keep)
    empty = np.zeros((0, car.FRAME_SIZE, car.FRAME_SIZE), np.uint8)
    steps = np.array(steps, np.int32)
    kept = np.repeat(np.flatnonzero(kept_frames(steps, run["first_off_road"], near)), repeat)
    return {**run, **counts, "frames": np.array(frames, np.uint8)[kept] if frames else empty,
            "labels": np.array(labels, np.uint8)[kept], "frame_steps": steps[kept]}


def collect(models, settings: dict, round_: int, workers: int = 1, progress=car._no_progress):
    """Round ``round_``'s episodes driven by the checkpoints ``models`` (one network or an
    ensemble's members; mixed with the expert by beta_r). Returns the arrays of a recording
    of those episodes (episode indices from 0) and the runs (return, steps, lap, steps the
    expert drove, steps the network agreed)."""
    config = expert_config(settings["expert_name"])
    b = beta(settings["beta0"], settings["beta_decay"], round_)
    seeds = track_seeds(settings["seed"], round_, settings["episodes"])
    paths = [str(m) for m in models]
    near, repeat = (settings.get(k, LATER_SETTINGS[k]) for k in ("near_departure", "repeat_kept"))
    jobs = [(paths, s, [round_seed(settings["seed"], round_, COINS), i], b, config,
             settings["max_steps"], near, repeat, _frame_kind(settings),
             settings.get("logit_offset"))
            for i, s in enumerate(seeds)]
    runs = car._map(_episode, jobs, workers, progress, f"round {round_}")
    arrays = {
        "frames": np.concatenate([r["frames"] for r in runs]),
        "labels": np.concatenate([r["labels"] for r in runs]),
        "episode": np.concatenate([np.full(len(r["labels"]), i, np.int32)
                                   for i, r in enumerate(runs)]),
        "step": np.concatenate([r["frame_steps"] for r in runs]),
        "seeds": np.array(seeds, np.int64),
        "returns": np.array([r["return"] for r in runs], np.float64),
        "laps": np.array([r["lap"] for r in runs], bool),
    }
    return arrays, [{k: v for k, v in r.items() if k not in ("frames", "labels", "frame_steps")}
                    for r in runs]


# -- recordings -----------------------------------------------------------------------------------

ARRAYS = ("frames", "labels", "episode", "step", "seeds", "returns", "laps")


def recording_folder(data_dir) -> pathlib.Path:
    """The folder of the recording in ``data_dir`` (itself, or its ``carracing`` subfolder, as
    ``--dataset carracing --data-dir`` looks), or a one-line error."""
    data_dir = pathlib.Path(data_dir)
    for folder in (data_dir / FILE_STEM, data_dir):
        if (folder / f"{FILE_STEM}.npz").is_file() and (folder / f"{FILE_STEM}.json").is_file():
            return folder
    raise MinisenseError(f"{data_dir} is not a car-racing recording (no {FILE_STEM}.npz and "
                         f"{FILE_STEM}.json there); record one with 'minisense car record --out "
                         "DIR' and pass --data-dir DIR")


def read_recording(folder) -> tuple[dict, dict]:
    """(arrays, metadata) of the recording in ``folder``, checked by the dataset loader first."""
    folder = pathlib.Path(folder)
    load_dataset("carracing", folder)              # every check of the loader, one-line errors
    meta = json.loads((folder / f"{FILE_STEM}.json").read_text())
    try:
        with np.load(folder / f"{FILE_STEM}.npz", allow_pickle=False) as f:
            arrays = {name: f[name] for name in ARRAYS}
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as e:
        raise MinisenseError(f"the recording in {folder} lacks its per-episode arrays "
                             f"({type(e).__name__}: {e}); record it again") from None
    return arrays, meta


def aggregate(arrays: dict, meta: dict, rounds: list[dict]) -> tuple[dict, dict]:
    """The recording ``arrays`` + ``meta`` with each round's episodes (``rounds``: arrays as
    :func:`collect` returns) appended as TRAINING episodes; validation and test untouched."""
    episodes = len(arrays["seeds"])
    parts, splits = [arrays], {name: list(ids) for name, ids in meta["splits"].items()}
    for added in rounds:
        parts.append({**added, "episode": added["episode"] + np.int32(episodes)})
        splits["train"] += list(range(episodes, episodes + len(added["seeds"])))
        episodes += len(added["seeds"])
    joined = {name: np.concatenate([p[name] for p in parts]) for name in ARRAYS}
    joined["episode"] = joined["episode"].astype(np.int32)
    counts = {name: int(np.isin(joined["episode"], ids).sum()) for name, ids in splits.items()}
    meta = {**meta, "episodes": episodes, "frames": int(len(joined["labels"])),
            "class_counts": np.bincount(joined["labels"], minlength=len(CLASSES)).tolist(),
            "splits": splits, "split_frames": counts,
            "dagger": {"rounds": len(rounds), "recorded_episodes": len(arrays["seeds"]),
                       "note": "episodes after the recorded ones were driven by DAgger rounds "
                               "(minisense.dagger); their returns are the mixed driver's"}}
    return joined, meta


def write_recording(folder, arrays: dict, meta: dict) -> None:
    """``arrays`` and ``meta`` as ``folder/carracing.npz`` + ``.json``, each written atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    files.atomic_write_bytes(pathlib.Path(folder) / f"{FILE_STEM}.npz", buffer.getvalue())
    files.atomic_write_json(pathlib.Path(folder) / f"{FILE_STEM}.json", meta)


def _write_arrays(path, arrays: dict) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    files.atomic_write_bytes(path, buffer.getvalue())


def _read_arrays(path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {name: f[name] for name in ARRAYS}
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as e:
        raise MinisenseError(f"{path} is unreadable ({type(e).__name__}: {e}); remove that round's "
                             "line and those after it from rounds.jsonl to redo them") from None


# -- training -------------------------------------------------------------------------------------

def train(data, settings: dict, round_: int, previous=None, member: int = 0):
    """The network of round ``round_`` (-1: the start) on ``data``, of ensemble member
    ``member``: p-SIREN from scratch; p-SIREN's step 4 continued from ``previous``
    (``psiren-step4``; from scratch at the start); or SENSE from ``previous`` (a random network
    of the run's sparsity at the start). Returns it and, for SENSE, the steps its search took
    (None for p-SIREN): fewer than ``sense_steps`` means the time budget ended the search, and a
    rerun of that round may reach another network."""
    seed = round_seed(settings["seed"], round_, TRAINING, member)
    if settings["trainer"] != "sense":
        config = PsirenConfig(**{**settings["psiren"], "seed": seed})
        if settings["trainer"] == "psiren" or previous is None:
            return psiren(data, config, architecture="car")[0], None
        continue_binary(previous, data, config, np.random.default_rng(seed))
        return previous, None
    if previous is None:
        previous = random_network("car", settings["psiren"]["sparsity"], seed,
                                  data.train.images[:1000])
    net, history = search(previous, data, SenseConfig(**{**settings["sense"], "seed": seed}),
                          keep=settings.get("sense_keep", LATER_SETTINGS["sense_keep"]))
    return net, int(history[-1]["step"])


def _search_steps(trained: list, settings: dict, log) -> dict:
    """The round record's ``search_steps`` (one per member, SENSE only), and a log line when a
    time budget, not ``sense_steps``, ended a search (load then decides where it stopped)."""
    if settings["trainer"] != "sense":
        return {}
    steps = [s for _, s in trained]
    short = [k for k, s in enumerate(steps) if s < settings["sense"]["max_steps"]]
    if short:
        log(f"note: the time budget ended the search of member(s) {short} after {steps} steps, "
            f"before --sense-steps {settings['sense']['max_steps']}; a rerun of this round may "
            "reach another network (raise --sense-minutes to avoid it)")
    return {"search_steps": steps}


def accuracies(nets: list, data) -> dict:
    """Exact integer frame accuracy on each split: of the network, or of the ensemble (summed
    logits, as it drives) with each member's in ``member_accuracies``."""
    if len(nets) == 1:
        return {f"{name}_accuracy": nets[0].accuracy(getattr(data, name).images,
                                                     getattr(data, name).labels)
                for name in SPLITS}
    scores = {name: ensemble.evaluate(nets, getattr(data, name).images,
                                      getattr(data, name).labels) for name in SPLITS}
    return {**{f"{name}_accuracy": s["sum"] for name, s in scores.items()},
            "member_accuracies": [{f"{name}_accuracy": s["members"][k]
                                   for name, s in scores.items()} for k in range(len(nets))]}


# -- the run --------------------------------------------------------------------------------------

def settings_for(data_dir, rounds: int, episodes: int = 4, seed: int = 0, beta0: float = 0.0,
                 beta_decay: float = 0.5, expert: str | None = None, trainer: str = "psiren",
                 psiren_config=None, sense_steps: int = 200, sense_seconds: float = 600.0,
                 max_steps: int = car.MAX_STEPS, start=None, members: int | None = None,
                 sense_keep: str = "best", near_departure: int = 0,
                 repeat_kept: int = 1, sense_subsample: float = 1.0,
                 sense_redraw_steps: int | None = None, logit_offset=None) -> dict:
    """The run's settings, checked (one-line errors); what ``dagger.json`` holds. ``expert``
    defaults to the recording's (its ``expert_name``; absent: pursuit-v1). ``start``: a
    checkpoint, or a list of them (an ensemble's members); ``members``: the ensemble's size
    (default: as many as ``start`` names, else 1). ``sense_keep``: the network a round's SENSE
    search hands on, the best by validation frames or its last (``runs.KEEP``).
    ``near_departure``: keep only the frames within that many steps of each episode's first
    departure from the road (0: every frame); ``repeat_kept``: each kept frame that many times.
    ``sense_subsample`` < 1: each round's search scores a random share of the aggregate, drawn
    afresh every ``sense_redraw_steps`` steps (``SenseConfig.subsample``). ``logit_offset``: one
    number a class, added to the driving network's real logits (``car.network_policy``)."""
    folder = recording_folder(data_dir)
    _, meta = read_recording(folder)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= MAX_ROUNDS:
        raise MinisenseError(f"rounds must be in 1..{MAX_ROUNDS}, got {rounds}")
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise MinisenseError(f"episodes per round must be >= 1, got {episodes}")
    car.check_seed(seed)
    if not 0 <= beta0 <= 1 or not 0 <= beta_decay <= 1:
        raise MinisenseError(f"beta0 and its decay are probabilities in [0, 1], got {beta0} and "
                             f"{beta_decay}")
    if trainer not in TRAINERS:
        raise MinisenseError(f"unknown trainer {trainer!r}; choose one of {', '.join(TRAINERS)}")
    if sense_keep not in KEEP:
        raise MinisenseError(f"sense_keep must be one of {', '.join(KEEP)}, got {sense_keep!r}")
    if sense_keep != "best" and trainer != "sense":
        raise MinisenseError(f"keeping a search's {sense_keep} network needs --trainer sense "
                             f"(here {trainer}): drop --sense-keep or add --trainer sense")
    for name, value, low, high in (("near_departure", near_departure, 0, car.MAX_STEPS),
                                   ("repeat_kept", repeat_kept, 1, MAX_REPEAT)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise MinisenseError(f"{name} must be a whole number in {low}..{high}, got {value!r}")
    if not car.ZOOM_STEPS < max_steps <= car.MAX_STEPS:
        raise MinisenseError(f"max steps must be in {car.ZOOM_STEPS + 1}..{car.MAX_STEPS} (the "
                             f"first {car.ZOOM_STEPS} frames are not recorded), got {max_steps}")
    sense_config = {"max_steps": sense_steps, "budget_seconds": float(sense_seconds)}
    if sense_subsample != 1 or sense_redraw_steps is not None:
        if trainer != "sense":
            raise MinisenseError(f"a subsampled fitness is SENSE's (here --trainer {trainer}): "
                                 "drop --sense-subsample/--sense-redraw-steps or add "
                                 "--trainer sense")
        # (only when set, so that the settings of runs without them read back unchanged)
        sense_config.update(subsample=sense_subsample, redraw_steps=sense_redraw_steps)
        SenseConfig(**sense_config).check_types()
        if not 0 < sense_subsample <= 1:
            raise MinisenseError(f"the sense subsample is a share of the aggregate, above 0 and "
                                 f"at most 1, got {sense_subsample!r}")
    car.check_logit_offset(logit_offset)
    expert = expert or meta.get("expert_name") or DEFAULT_EXPERT
    expert_config(expert)                                        # a known version
    config = psiren_config or config_for("carracing")
    config.validate()
    starts = [] if start is None else [start] if isinstance(start, (str, PathLike)) \
        else list(start)
    members = members or len(starts) or 1
    if isinstance(members, bool) or not isinstance(members, int) or \
            not 1 <= members <= MAX_MEMBERS:
        raise MinisenseError(f"an ensemble has 1..{MAX_MEMBERS} members, got {members}")
    if starts and len(starts) != members:
        raise MinisenseError(f"{len(starts)} start checkpoints for {members} members: give one "
                             "--checkpoint per member, or none")
    kind = frame_kind_in(meta, folder / f"{FILE_STEM}.json")
    for path in starts:
        _, start_meta = checkpoint.load(path, architecture="car")  # a car network, or an error
        check_frame_kind(start_meta, kind, checkpoint.checkpoint_paths(path)[1])
    starts = [str(checkpoint.checkpoint_paths(p)[0].resolve()) for p in starts]
    start = None if not starts else starts[0] if members == 1 else starts
    digest = hashlib.sha256((folder / f"{FILE_STEM}.npz").read_bytes()).hexdigest()
    return {"recording": str(folder.resolve()), "recording_sha256": digest, "rounds": rounds,
            "episodes": episodes, "seed": seed, "beta0": float(beta0),
            "beta_decay": float(beta_decay), "expert_name": expert, "trainer": trainer,
            "psiren": {k: v for k, v in asdict(config).items() if k != "seed"},
            "sense": sense_config,
            "max_steps": max_steps, "start": start, "members": members,
            "sense_keep": sense_keep, "near_departure": near_departure,
            "repeat_kept": repeat_kept, "frame_kind": kind,
            "logit_offset": None if logit_offset is None else [float(v) for v in logit_offset]}


def _check_same(saved: dict, settings: dict, out) -> None:
    """A rerun continues the run only with its settings (more rounds allowed)."""
    for key in sorted(set(saved) | set(settings)):
        before = saved.get(key, LATER_SETTINGS.get(key))
        if key not in ("rounds", "command") and before != settings.get(key):
            raise MinisenseError(f"{out} holds a DAgger run with other settings ({key}: "
                                 f"{before!r}, here {settings.get(key)!r}); give its "
                                 "options again to continue it, or choose another --out")


def read_rounds(out) -> list[dict]:
    """The records of the finished rounds in ``out/rounds.jsonl`` (round 0, 1, ... in order)."""
    path = pathlib.Path(out) / ROUNDS_FILE
    records = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                break                                    # a line cut short: redo that round
            if not isinstance(record, dict) or record.get("round") != len(records):
                break
            records.append(record)
    return records


def model_path(out, round_: int) -> pathlib.Path:
    """The checkpoint of round ``round_`` (-1: the start) in the run folder ``out``."""
    return pathlib.Path(out) / ("start" if round_ < 0 else f"round-{round_:03d}") / "model.npz"


def model_paths(out, round_: int, members: int) -> list[pathlib.Path]:
    """The checkpoints of round ``round_``: the network's, or each ensemble member's (in
    ``member-K/``, which ``car drive`` and ``ensemble`` read as one ensemble)."""
    path = model_path(out, round_)
    if members == 1:
        return [path]
    return [path.parent / f"member-{k}" / path.name for k in range(members)]


def _frame_kind(settings: dict) -> str:
    return settings.get("frame_kind", LATER_SETTINGS["frame_kind"])


def _members(settings: dict) -> int:
    return settings.get("members", LATER_SETTINGS["members"])


def dagger(settings: dict, out, workers: int = 1, progress=car._no_progress,
           log=lambda line: None, command: list[str] | None = None) -> dict:
    """Run (or continue) DAgger in the folder ``out`` with ``settings`` (:func:`settings_for`).
    Returns the summary, also written to ``out/summary.json``; ``log`` gets a line per round."""
    out = pathlib.Path(out)
    files.check_run_folder(out, "DAgger run")
    with files.folder_lock(out):
        saved_path = out / SETTINGS_FILE
        if saved_path.is_file():
            _check_same(json.loads(saved_path.read_text()), settings, out)
        files.atomic_write_json(saved_path, {**settings, "command": command})
        return _run(settings, out, workers, progress, log)


def _run(settings, out, workers, progress, log) -> dict:
    arrays, meta = read_recording(settings["recording"])
    done = read_rounds(out)
    collected = [_read_arrays(out / f"round-{r:03d}" / "episodes.npz") for r in range(len(done))]
    members = _members(settings)
    nets = _start(settings, out, log)
    if done:
        nets = [checkpoint.load(p, architecture="car")[0]
                for p in model_paths(out, len(done) - 1, members)]
    for r in range(len(done), settings["rounds"]):
        started = time.perf_counter()
        folder = out / f"round-{r:03d}"
        added, runs = collect(model_paths(out, r - 1, members), settings, r, workers, progress)
        _write_arrays(folder / "episodes.npz", added)
        collected.append(added)
        write_recording(out / "data", *aggregate(arrays, meta, collected))
        data = load_dataset("carracing", out / "data")
        trained = [train(data, settings, r, net, k) for k, net in enumerate(nets)]
        nets = [net for net, _ in trained]
        returns = np.array([run["return"] for run in runs])
        steps = sum(run["steps"] for run in runs)
        record = {"round": r, "beta": beta(settings["beta0"], settings["beta_decay"], r),
                  "frames_added": int(len(added["labels"])),
                  "train_frames": int(len(data.train.labels)), **accuracies(nets, data),
                  "mean_return": float(returns.mean()), "sem_return": car._sem(returns),
                  "laps": int(sum(run["lap"] for run in runs)),
                  "first_off_road": [run["first_off_road"] for run in runs],
                  "network_agreement": sum(run["agree"] for run in runs) / max(steps, 1),
                  "expert_steps": int(sum(run["expert"] for run in runs)),
                  "seeds": added["seeds"].tolist(), **_search_steps(trained, settings, log),
                  "seconds": time.perf_counter() - started}
        for net, path in zip(nets, model_paths(out, r, members)):
            checkpoint.save(net, path, {"dataset": "carracing", "dagger": record,
                                        **frame_meta(data)}, force=True)
        done.append(record)
        files.atomic_write_bytes(out / ROUNDS_FILE,
                                 "".join(json.dumps(d) + "\n" for d in done).encode())
        left = sum(step is not None for step in record["first_off_road"])
        log(f"round {r}: +{record['frames_added']} frames, driving return "
            f"{record['mean_return']:.1f} +- {record['sem_return']:.1f} (left the road in {left} "
            f"of {len(runs)}), accuracy train "
            f"{record['train_accuracy']:.4f} validation {record['validation_accuracy']:.4f} "
            f"test {record['test_accuracy']:.4f}, {record['seconds']:.0f} s")
    last = model_path(out, len(done) - 1)
    summary = {"rounds": done, "final": done[-1] if done else None,
               "checkpoint": str(last if members == 1 else last.parent), "data": str(out / "data")}
    files.atomic_write_json(out / "summary.json", summary)
    return summary


def _start(settings, out, log) -> list:
    """The networks before round 0 (one, or an ensemble's members): the start checkpoints, or
    trained on the recording (kept in ``out/start``; one that does not load, a save cut short,
    is trained again)."""
    paths = model_paths(out, -1, _members(settings))
    if all(p.with_suffix(".json").is_file() for p in paths):
        try:
            return [checkpoint.load(p, architecture="car")[0] for p in paths]
        except MinisenseError:
            pass
    started = time.perf_counter()
    data = load_dataset("carracing", settings["recording"])
    starts, steps = settings["start"], {}
    if starts is not None:
        starts = [starts] if isinstance(starts, str) else starts
        nets = [checkpoint.load(s, architecture="car")[0] for s in starts]
    else:
        trained = [train(data, settings, -1, member=k) for k in range(len(paths))]
        nets = [net for net, _ in trained]
        steps = _search_steps(trained, settings, log)
    record = {"round": -1, **accuracies(nets, data), **steps,
              "seconds": time.perf_counter() - started}
    for net, path in zip(nets, paths):
        checkpoint.save(net, path, {"dataset": "carracing", "dagger": record,
                                    **frame_meta(data)}, force=True)
    log(f"start: accuracy train {record['train_accuracy']:.4f} validation "
        f"{record['validation_accuracy']:.4f} test {record['test_accuracy']:.4f}")
    return nets
