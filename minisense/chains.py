"""Parallel SENSE chains: a network family grown by independent searches from one start.

Every move of SENSE (Algorithm 2) keeps each layer's counts of -1, 0 and +1, so a search never
leaves the family of its start network (Section 3.2). M searches from the same start with seeds
seed, seed + 1, ..., seed + M - 1 therefore give M members of one family: the material of the
paper's future work, ensembles of a family (``minisense.ensemble``).

Each chain is a sweep task (``minisense.sweep``: local processes or a Dask cluster) writing a
complete search folder, ``<out>/chain-<i>/``, resumable on its own: running the same chains again
continues the unfinished ones. Chain 0 is exactly the single search with the same seed. The
chains' numba threads share the machine's cores (one each when a Dask cluster runs them); their
integer delta evaluation gives the same result on any number of threads. ``<out>/family.json``
lists the members and checks that every one of them has the start's family.
"""

from __future__ import annotations

import json
import os
import pathlib
from dataclasses import asdict, replace

import numba

from minisense import data, files, runs, sense, sweep
from minisense.errors import MinisenseError

FAMILY_FILE = "family.json"
# Settings a continued chain may change: how long it runs.
EXTENDABLE = ("budget_seconds", "max_steps")


def chain_folder(out, index: int) -> pathlib.Path:
    return pathlib.Path(out) / f"chain-{index}"


def run_chain(network: dict, dataset: str, data_dir, config: dict, out: str,
              threads: int) -> dict:
    """One chain (a sweep task): SENSE from ``network`` (``sweep.network_spec``) with
    ``config`` (a ``SenseConfig`` as a dict) in the folder ``out``, continued if ``out`` holds
    this chain already; returns the search's summary with the chain's seed and folder."""
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    folder = pathlib.Path(out)
    net = sweep.network_from(network)
    # settings left at None become the network's, as saved
    config = sense.SenseConfig(**config).resolve(net)
    if (folder / runs.STATE_FILE).exists():
        saved = asdict(runs.read_config(folder / "config.json"))
        # margin_clip 0 asks for the start's logit spread, which the chain saved as a number.
        fixed = {k: v for k, v in asdict(config).items()
                 if k not in EXTENDABLE and not (k == "margin_clip" and not v)}
        if {k: saved.get(k) for k in fixed} != json.loads(json.dumps(fixed)):
            raise MinisenseError(f"{folder} holds a chain of other settings; choose another --out")
        search = runs.resume(folder, data_dir, config.max_steps, config.budget_seconds)
    else:
        search = runs.SearchRun(net, data.load_cached(dataset, data_dir), config, folder)
    summary = search.run()
    return {"chain": folder.name, "seed": config.seed, "folder": str(folder),
            "family": search.network(search.best_weights).family(), **summary}


def run_chains(config: sense.SenseConfig, chains: int, out, dataset: str | None = None,
               from_checkpoint=None, sparsity: float | None = None, data_dir=None,
               jobs: int = 1, backend: str = "joblib", scheduler: str | None = None,
               progress=sweep.no_progress) -> dict:
    """``chains`` SENSE chains from one start (``runs.initial_network`` with ``config.seed``),
    chain i searching with seed ``config.seed + i``, on ``jobs`` local processes or a Dask
    cluster. Writes and returns the family summary (``<out>/family.json``)."""
    if chains < 1:
        raise MinisenseError(f"--chains must be >= 1, got {chains}")
    sweep.check(jobs, backend, scheduler)
    files.check_run_folder(out, "family of chains")
    net, dataset_ = runs.initial_network(config.seed, dataset, from_checkpoint, sparsity,
                                         data_dir)
    config = config.resolve(net)
    start = sweep.network_spec(net)
    threads = 1 if backend == "dask" else max(1, (os.cpu_count() or 1) // min(jobs, chains))
    tasks = [dict(network=start, dataset=dataset_.name,
                  data_dir=None if data_dir is None else str(data_dir),
                  config=asdict(replace(config, seed=config.seed + i)),
                  out=str(chain_folder(out, i)), threads=threads) for i in range(chains)]
    members = sweep.run(run_chain, tasks, jobs, backend, scheduler, progress, label="chains")
    family = net.family()
    summary = {"dataset": dataset_.name, "chains": chains, "start_family": family,
               "start": {"checkpoint": None if from_checkpoint is None else str(from_checkpoint),
                         "sparsity": sparsity, "seed": config.seed},
               "config": asdict(config),
               "members": [{k: v for k, v in m.items() if k != "family"} for m in members],
               "same_family": all(m["family"] == family for m in members)}
    files.atomic_write_json(pathlib.Path(out) / FAMILY_FILE, summary)
    if not summary["same_family"]:
        odd = [m["chain"] for m in members if m["family"] != family]
        raise MinisenseError(f"chains {', '.join(odd)} left the start's family: a bug; please "
                             "report it with the folder")
    return summary
