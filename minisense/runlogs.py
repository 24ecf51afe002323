"""What a run folder recorded, as arrays for its picture (``minisense.runplots``): the series
read from the files ``minisense train``, ``search`` and ``car dagger`` write, nothing recomputed.

* A p-SIREN run (``metrics.json``): per epoch the loss and validation accuracy, per step of
  Algorithm 1 its epochs and finished accuracies. The history holds no sparsity per epoch, so
  the sparsity series is step 2's schedule derived from the config the metrics hold (n1, n2,
  ``prune_every``: a straight line over step 2 when the mask moves every batch, a stair of n2
  treads when it moves once per epoch; ``psiren.ADDED_OPTIONS`` for runs saved before the
  option), ending at the zeros the finished steps recorded.
* A SENSE search (``config.json`` and ``steps.jsonl``, or a thinned ``steps-everyN.jsonl`` as
  kept in reference_outputs): per record the step, seconds, accuracies, layer and whether a move
  was accepted (Algorithm 2); moves accepted per layer and the acceptance rate in a rolling
  window. From a thinned log each record stands for the steps since the one before it, so
  those two are estimates.
* A family of chains (``search --chains``: ``family.json``, ``chain-<i>/``): each member's.
* A backprop line (``search --backprop``: ``backprop.jsonl``): its records.
* A DAgger run (``car dagger``: ``dagger.json``, ``rounds.jsonl``, ``start/model.json``,
  ``round-RRR/episodes.npz``, ``data/carracing.json``): per round the driving return (mean, its
  standard error, each episode's), the frames added and the aggregate's training frames, and
  the accuracies of the network trained; the start network's accuracies; the expert's mean
  return on the recording's tracks, when that recording is comparable (see
  :func:`dagger_series`).

Every bad or missing file is a one-line ``MinisenseError`` naming it and the fix.
"""

from __future__ import annotations

import collections
import json
import math
import pathlib
import re
import zipfile

import numpy as np

from minisense import runs
from minisense.chains import FAMILY_FILE
from minisense.errors import MinisenseError
from minisense.psiren import ADDED_OPTIONS, STEPS

__all__ = ["backprop_series", "chains_series", "dagger_series", "is_number", "psiren_series",
           "read_json", "read_records", "run_kind", "search_series", "step_log"]

THINNED = re.compile(r"steps-every(\d+)\.jsonl")
SPLIT_FIELDS = ("train_accuracy", "validation_accuracy", "test_accuracy")
# The files of a DAgger run, as minisense.dagger names them (importing it here would close a
# cycle: dagger -> car -> runlogs; tests/test_carplots.py checks the names agree).
DAGGER_FILE, ROUNDS_FILE = "dagger.json", "rounds.jsonl"
# What every line of rounds.jsonl holds as a number (minisense.dagger._run writes them all).
ROUND_FIELDS = ("round", "beta", "frames_added", "train_frames", "mean_return",
                "sem_return") + SPLIT_FIELDS


def step_log(folder) -> pathlib.Path | None:
    """A search's step records: ``steps.jsonl``, else the thinned ``steps-everyN.jsonl`` of the
    smallest N, else None."""
    folder = pathlib.Path(folder)
    if (folder / runs.LOG_FILE).is_file():
        return folder / runs.LOG_FILE
    thinned = sorted((int(m.group(1)), p) for p in folder.glob("steps-every*.jsonl")
                     if (m := THINNED.fullmatch(p.name)) and p.is_file())
    return thinned[0][1] if thinned else None


def _chain_folders(folder: pathlib.Path) -> list[pathlib.Path]:
    found = [p for p in folder.glob("chain-*") if p.name[6:].isdigit() and step_log(p)]
    return sorted(found, key=lambda p: int(p.name[6:]))


def run_kind(folder) -> str:
    """What wrote ``folder``: "psiren" (``minisense train``), "search", "chains" (``search
    --chains``), "backprop" (``search --backprop``) or "dagger" (``car dagger``); a one-line
    error if none did."""
    folder = pathlib.Path(folder)
    if not folder.exists():
        raise MinisenseError(f"{folder} does not exist; pass the folder of a run")
    if not folder.is_dir():
        raise MinisenseError(f"{folder} is a file, not a run folder; pass the folder that holds "
                             f"it ({folder.parent})")
    if (folder / DAGGER_FILE).is_file():
        return "dagger"
    if (folder / "metrics.json").is_file():
        return "psiren"
    if (folder / FAMILY_FILE).is_file() or _chain_folders(folder):
        return "chains"
    if (folder / "config.json").is_file():
        if step_log(folder) is None:
            raise MinisenseError(f"search folder {folder} holds no {runs.LOG_FILE} (nor a thinned "
                                 "steps-everyN.jsonl); restore it from the run")
        return "search"
    if (folder / runs.BACKPROP_FILE).is_file():
        return "backprop"
    inside = sorted(p.name for p in folder.iterdir() if p.is_dir() and (
        (p / "metrics.json").is_file() or (p / "config.json").is_file()))
    hint = f" (its {inside[0]}/ is one)" if inside else ""
    raise MinisenseError(f"{folder} is not a run folder: it holds no metrics.json (minisense "
                         "train), config.json and steps.jsonl (minisense search), family.json "
                         "(search --chains), backprop.jsonl (search --backprop) or dagger.json "
                         f"(car dagger); pass the --out folder of one of them{hint}")


def read_json(path: pathlib.Path, required: bool = True) -> dict:
    """A JSON record of a run ({} for a missing file that is not ``required``)."""
    if not required and not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise MinisenseError(f"{path} is unreadable ({type(e).__name__}: {e}); restore it from "
                             "the run") from None
    if not isinstance(value, dict):
        raise MinisenseError(f"{path} holds {type(value).__name__}, not a record; restore it "
                             "from the run")
    return value


def is_number(value) -> bool:
    """Whether a JSON value is a finite number (not a bool, not NaN or infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_records(path, fields: tuple[str, ...]) -> list[dict]:
    """The records of a JSON-lines log, each with ``fields`` as finite numbers. A last line
    without its newline that does not parse (a run still writing it) is left out; any other bad
    line, or no record at all, is a one-line error naming the file."""
    path = pathlib.Path(path)
    try:
        lines = path.read_text().split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise MinisenseError(f"{path} is unreadable ({type(e).__name__}); restore it from the "
                             "run") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            record = None
        if not isinstance(record, dict) or not all(is_number(record.get(k)) for k in fields):
            if number == len(lines) and record is None:
                break               # the line a running search is writing
            raise MinisenseError(f"{path} line {number} is not a record of the run (it needs "
                                 f"{', '.join(fields)} as numbers); restore the file from the "
                                 "run, or delete that line")
        if records and record[fields[0]] <= records[-1][fields[0]]:
            raise MinisenseError(f"{path} line {number}: {fields[0]} {record[fields[0]]} after "
                                 f"{records[-1][fields[0]]}; a log holds one run in order: "
                                 "restore it from the run")
        records.append(record)
    if not records:
        raise MinisenseError(f"{path} holds no records; restore it from the run, or plot the run "
                             "once it has recorded a step")
    return records


def psiren_series(folder) -> dict:
    """What the p-SIREN picture draws, from ``folder/metrics.json``.

    Returns "epoch" (E,) (1..E through the run), "step" (E,) (Algorithm 1's step of each epoch),
    "loss" (E,), "validation_accuracy" (E,) (fractions); "steps": per step of ``STEPS`` run, its
    "start" and "end" epoch and, when finished, "validation_accuracy", "test_accuracy",
    "sparsity" (% zeros, from its recorded zeros); "sparsity": {"epoch", "percent"} of the
    schedule derived from the config (module docstring); "meta": metrics.json without its
    history.
    """
    path = pathlib.Path(folder) / "metrics.json"
    metrics = read_json(path)
    history, config = metrics.get("history"), metrics.get("config")
    if not isinstance(history, list) or not history or not all(
            isinstance(r, dict) and r.get("step") in STEPS for r in history) \
            or not isinstance(config, dict) or not isinstance(config.get("epochs"), dict):
        raise MinisenseError(f"{path} holds no history of Algorithm 1's steps and config; "
                             "pass the folder of a finished minisense train")
    epochs = [r for r in history if not r.get("done")]
    if not all(is_number(r.get("loss")) and is_number(r.get("validation_accuracy"))
               for r in epochs):
        raise MinisenseError(f"{path}: an epoch record lacks its loss or validation accuracy; "
                             "restore it from the run")
    family = metrics.get("family")
    total = sum(c for layer in family.values() for c in layer.values()) \
        if isinstance(family, dict) else 0
    steps, end = {}, 0
    for step in STEPS:
        n = sum(r["step"] == step for r in epochs)
        steps[step] = {"start": end, "end": end + n}
        end += n
        done = [r for r in history if r["step"] == step and r.get("done")]
        if done:
            steps[step].update({k: done[0].get(k) for k in ("validation_accuracy",
                                                            "test_accuracy")})
            if total and is_number(done[0].get("zeros")):
                steps[step]["sparsity"] = 100 * done[0]["zeros"] / total
    final = steps["prune"].get("sparsity", float(config.get("sparsity", 0)))
    start, stop = steps["prune"]["start"], steps["prune"]["end"]
    if config.get("prune_every", ADDED_OPTIONS["prune_every"]) == "batch":
        x, y = [0, start, stop, end], [0, 0, final, final]
    else:                           # the k-th epoch of step 2 starts at k/n2 of the zeros
        x, y = [0, start], [0, 0]
        for k in range(1, stop - start + 1):
            x += [start + k - 1, start + k]
            y += [final * k / (stop - start)] * 2
        x, y = x + [end], y + [final]
    return {"epoch": np.arange(1, len(epochs) + 1),
            "step": [r["step"] for r in epochs],
            "loss": np.array([r["loss"] for r in epochs], dtype=np.float64),
            "validation_accuracy": np.array([r["validation_accuracy"] for r in epochs],
                                            dtype=np.float64),
            "steps": steps, "sparsity": {"epoch": np.array(x), "percent": np.array(y)},
            "meta": {k: v for k, v in metrics.items() if k != "history"}}


def search_series(folder, window_steps: int | None = None) -> dict:
    """What the SENSE picture draws, from a search folder.

    Returns "log" (the file read), "step" (n,) int, "seconds" (n,), the three accuracies (n,)
    (fractions), "layer" (n,) (None for the start), "accepted" (n,) bool; "every": the log's
    usual step between records (1: every step); "weight" (n,): the steps each record stands for
    (0 for the start); "accepted_by_layer": layer -> (n,) moves accepted up to each record
    (exact from a full log, estimated from a thinned one); "rate" (n,): moves accepted per step
    in the last ``window_steps`` (default: a tenth of the run, at least 10 records' worth);
    "best": step, seconds and accuracies of the best network by validation (summary.json's, else
    the first best accepted record's); "backprop": the backprop.jsonl records or None; "config",
    "summary", "checkpoint" (best/ or current/ model.json): the run's own records.
    """
    folder = pathlib.Path(folder)
    log = step_log(folder)
    if log is None:
        raise MinisenseError(f"search folder {folder} holds no {runs.LOG_FILE}; restore it from "
                             "the run")
    records = read_records(log, ("step", "seconds") + SPLIT_FIELDS)
    step = np.array([r["step"] for r in records], dtype=np.int64)
    series = {"log": log, "step": step,
              "seconds": np.array([r["seconds"] for r in records], dtype=np.float64),
              "layer": [r.get("layer") for r in records],
              "accepted": np.array([r.get("accepted") is True for r in records])}
    for key in SPLIT_FIELDS:
        series[key] = np.array([r[key] for r in records], dtype=np.float64)
    gaps = collections.Counter(np.diff(step).tolist())
    every = gaps.most_common(1)[0][0] if gaps else 1
    weight = np.diff(step, prepend=step[0] - (every if step[0] else 0))
    moves = series["accepted"] * weight
    series["every"], series["weight"] = every, weight
    series["accepted_by_layer"] = {
        layer: np.cumsum(moves * np.array([x == layer for x in series["layer"]]))
        for layer in dict.fromkeys(x for x in series["layer"] if x is not None)}
    window = window_steps or max(10 * every, int(step[-1] - step[0]) // 10)
    cum_moves, cum_steps = np.cumsum(moves), np.cumsum(weight)
    first = np.searchsorted(step, step - window, side="right")        # first record inside
    before = np.where(first > 0, first - 1, 0)
    moved = cum_moves - np.where(first > 0, cum_moves[before], 0)
    taken = cum_steps - np.where(first > 0, cum_steps[before], 0)
    series["rate"] = np.where(taken > 0, moved / np.maximum(taken, 1), np.nan)
    series["window"] = window
    series["config"] = read_json(folder / "config.json")
    series["summary"] = read_json(folder / "summary.json", required=False)
    series["checkpoint"] = next((read_json(p) for p in (folder / "best" / "model.json",
                                 folder / "current" / "model.json") if p.is_file()), {})
    best = series["summary"].get("best")
    if not (isinstance(best, dict) and all(is_number(best.get(k)) for k in
                                           ("step", "validation_accuracy", "test_accuracy"))):
        moved_to = np.flatnonzero(series["accepted"] | (step == 0))
        i = moved_to[np.argmax(series["validation_accuracy"][moved_to])] if moved_to.size else 0
        best = {k: records[i][k] for k in ("step", "validation_accuracy", "test_accuracy")}
    series["best"] = {**best, "seconds": float(np.interp(best["step"], step, series["seconds"]))}
    backprop = folder / runs.BACKPROP_FILE
    series["backprop"] = backprop_series(folder)["records"] if backprop.is_file() else None
    return series


def backprop_series(folder) -> dict:
    """A backprop line's records ("records": dicts with batches, seconds, validation_accuracy,
    test_accuracy) and its "summary" (summary.json, {} if missing)."""
    folder = pathlib.Path(folder)
    records = read_records(folder / runs.BACKPROP_FILE,
                           ("batches", "seconds", "validation_accuracy", "test_accuracy"))
    summary = read_json(folder / "summary.json", required=False)
    return {"records": records, "summary": summary if summary.get("method") == "backprop" else {}}


def chains_series(folder) -> dict:
    """A family of chains: "members": chain folder name -> :func:`search_series`, in chain order;
    "family": family.json ({} while the chains are still running)."""
    folder = pathlib.Path(folder)
    members = {p.name: search_series(p) for p in _chain_folders(folder)}
    if not members:
        raise MinisenseError(f"{folder} holds {FAMILY_FILE} but no chain-<i>/ search folders; "
                             "restore them, or run the same search --chains command again")
    return {"members": members, "family": read_json(folder / FAMILY_FILE, required=False)}


def _episode_returns(path: pathlib.Path) -> list[float] | None:
    """The per-episode returns a round's ``episodes.npz`` holds (None without the file)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            returns = np.asarray(f["returns"], dtype=np.float64)
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as e:
        raise MinisenseError(f"{path} is unreadable ({type(e).__name__}); restore it from the "
                             "run") from None
    return returns.tolist()


def _recorded_expert(meta: dict, settings: dict) -> dict | None:
    """The expert's mean return on the recording's tracks, from the aggregate's metadata, when
    it measures the driver of the rounds' labels: the same expert version, no noise in its
    actions, episodes cut at the same step; else None (``--expert`` can give one)."""
    joined = meta.get("dagger")                    # the aggregate: its first episodes recorded
    episodes = joined.get("recorded_episodes") if isinstance(joined, dict) else \
        meta.get("episodes")
    if not (is_number(meta.get("expert_mean_return")) and meta.get("noise") == 0
            and meta.get("expert_name") == settings.get("expert_name")
            and meta.get("max_steps") == settings.get("max_steps") and is_number(episodes)
            and is_number(meta.get("seed"))):
        return None
    return {"mean_return": float(meta["expert_mean_return"]), "sem_return": None,
            "expert_name": meta["expert_name"], "episodes": int(episodes),
            "seeds": [int(meta["seed"]), int(meta["seed"]) + int(episodes) - 1],
            "source": "the recording"}


def dagger_series(folder) -> dict:
    """What the DAgger picture draws, from a ``car dagger`` run folder.

    In the notation of ``minisense.dagger``: pi_0 is the start, round r drives pi_r (mixed with
    the expert at beta_r) and trains pi_{r+1}. For the n finished rounds (rounds.jsonl) it
    returns "round" (n,) int, "beta" (n,), "mean_return" (n,), "sem_return" (n,) and
    "episode_returns" (a list per round, None where episodes.npz is gone): the driving of pi_r;
    "frames_added" (n,) int (frames round r collected), "train_frames" (n,) int (the aggregate's
    training frames pi_{r+1} was trained on), the three accuracies (n,) (fractions) of pi_{r+1};
    "start": pi_0's accuracies (start/model.json, an ensemble's start/member-0/model.json;
    None if missing) and "start_train_frames" (the
    recording's, round 0's aggregate less what round 0 added); "expert": the expert's mean
    return on the recording's tracks (``_recorded_expert``; None if not comparable); "settings"
    (dagger.json), "records" (rounds.jsonl as read).
    """
    folder = pathlib.Path(folder)
    settings = read_json(folder / DAGGER_FILE)
    path = folder / ROUNDS_FILE
    if not path.is_file():
        raise MinisenseError(f"{folder} holds no {ROUNDS_FILE}: the DAgger run has finished no "
                             "round yet; plot it once it has")
    records = read_records(path, ROUND_FIELDS)
    if [r["round"] for r in records] != list(range(len(records))):
        raise MinisenseError(f"{path} numbers its rounds {[r['round'] for r in records]}, not 0, "
                             "1, ...; restore it from the run")
    series = {"settings": settings, "records": records,
              "round": np.arange(len(records)),
              "episode_returns": [_episode_returns(folder / f"round-{r:03d}" / "episodes.npz")
                                  for r in range(len(records))]}
    for key in ROUND_FIELDS[1:]:
        dtype = np.int64 if key in ("frames_added", "train_frames") else np.float64
        series[key] = np.array([r[key] for r in records], dtype=dtype)
    series["start_train_frames"] = int(series["train_frames"][0] - series["frames_added"][0])
    # An ensemble's members each hold the start's record (the ensemble's accuracies).
    start_json = next((p for p in (folder / "start" / "model.json",
                                   folder / "start" / "member-0" / "model.json") if p.is_file()),
                      folder / "start" / "model.json")
    start = read_json(start_json, required=False).get("dagger")
    series["start"] = {k: float(start[k]) for k in SPLIT_FIELDS} if isinstance(start, dict) \
        and all(is_number(start.get(k)) for k in SPLIT_FIELDS) else None
    meta = read_json(folder / "data" / "carracing.json", required=False)
    series["expert"] = _recorded_expert(meta, settings)
    return series
