"""Independent runs in parallel: local processes (joblib) or a Dask distributed cluster.

The paper's figures are made of many runs that do not depend on each other: p-SIREN at every
sparsity level with several seeds (Figs. 2 and 12), and thousands of first neighbours scored in
chunks (Figs. 3, 4, 9-11). ``run`` maps one function over a list of tasks (keyword-argument dicts)
and returns the results in the order of the tasks:

* ``backend="joblib"``, ``jobs=1``: one after the other in this process;
* ``backend="joblib"``, ``jobs=N``: on N local worker processes (joblib's loky);
* ``backend="dask"``, ``scheduler="tcp://host:8786"``: on the workers of a running Dask cluster
  (the optional extra ``pip install "minisense[dask]"``; start one with ``dask scheduler`` and
  ``dask worker tcp://host:8786``). Every worker must see the same ``--data-dir``.

Same seeds, same results, wherever a task runs: every task carries its own seed, and runs with
ONE BLAS thread. The second is needed because a float matrix product's rounding depends on how
many threads split it (measured: p-SIREN losses differ in the 8th digit between 1 and 2 OpenBLAS
threads), so a task run on a 2-thread laptop and on a 16-thread cluster node would otherwise
drift apart. The integer delta evaluation (``minisense.fast.delta``) is exact with any thread count.
"""

from __future__ import annotations

import contextlib

from minisense.errors import MinisenseError
from minisense.fast.shards import one_blas_thread
from minisense.network import Network, binary_network

BACKENDS = ("joblib", "dask")
CONNECT_TIMEOUT_SECONDS = 30


def no_progress(iterable, label=""):
    """The silent ``progress`` hook: ``progress(iterable, label=...)`` as a context manager."""
    return contextlib.nullcontext(iterable)


def _call(function, task: dict):
    """One task in a worker (a loky process or a Dask worker): run it on one BLAS thread.

    Through the process-wide count of ``minisense.fast.shards.one_blas_thread``: a task on a
    sibling thread (Dask's threaded workers) keeps the limit until the last of them ends, and the
    limit holds even when another thread of the process set one before (with threadpoolctl 3.8
    a plain ``threadpool_limits`` call from this thread would then be silently ignored).
    """
    with one_blas_thread():
        return function(**task)


def check(jobs: int = 1, backend: str = "joblib", scheduler: str | None = None) -> None:
    """Raise a one-line MinisenseError for a bad combination of options (before any work)."""
    if backend not in BACKENDS:
        raise MinisenseError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if not isinstance(jobs, int) or jobs < 1:
        raise MinisenseError(f"jobs must be a whole number >= 1, got {jobs!r}")
    if backend == "dask" and not scheduler:
        raise MinisenseError("the dask backend needs the scheduler's address: --scheduler "
                             "tcp://HOST:8786 (start one with 'dask scheduler')")
    if backend != "dask" and scheduler:
        raise MinisenseError("--scheduler is only for --backend dask; add --backend dask or drop "
                             "--scheduler")


def run(function, tasks: list[dict], jobs: int = 1, backend: str = "joblib",
        scheduler: str | None = None, progress=no_progress, label: str = "") -> list:
    """``[function(**task) for task in tasks]``, in parallel as configured (module docstring).

    ``function`` must be importable by name (a module-level function) for the workers to find
    it. ``progress(iterable, label=...)`` wraps the ticks of finished tasks (e.g.
    ``click.progressbar``). A task's MinisenseError reaches the caller unchanged.
    """
    check(jobs, backend, scheduler)
    if not tasks:
        return []
    with progress(range(len(tasks)), label=label) as bar:
        ticks = iter(bar)
        if backend == "dask":
            return _dask(function, tasks, scheduler, ticks)
        if jobs == 1:
            results = []
            with one_blas_thread():                 # restored: this is the caller's
                for task in tasks:
                    results.append(function(**task))
                    next(ticks, None)
            return results
        from joblib import Parallel, delayed

        results = []
        # Ordered generator: results come back in task order as they finish.
        for result in Parallel(n_jobs=jobs, return_as="generator")(
                delayed(_call)(function, task) for task in tasks):
            results.append(result)
            next(ticks, None)
        return results


def _dask(function, tasks: list[dict], scheduler: str, ticks) -> list:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise MinisenseError("the dask backend needs Dask's distributed scheduler: "
                             "pip install \"minisense[dask]\"") from None
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise MinisenseError(f"cannot reach the Dask scheduler at {scheduler} ({e}); start one "
                             "with 'dask scheduler' and workers with 'dask worker ADDRESS'"
                             ) from None
    with client:
        futures = [client.submit(_call, function, task, pure=False) for task in tasks]
        for _ in as_completed(futures, loop=client.loop):
            next(ticks, None)
        return client.gather(futures)


# -- networks as task arguments --------------------------------------------------------------

def network_spec(net: Network) -> dict:
    """A binary network as plain arrays and numbers, cheap to send to a worker process."""
    return {"architecture": net.architecture, "weights": net.ternary_weights(),
            "thresholds": dict(net.thresholds),
            "last_gain": float(net.last_gain)}


def network_from(spec: dict) -> Network:
    """The binary network of a :func:`network_spec`."""
    return binary_network(spec["architecture"], spec["weights"], spec["thresholds"],
                          spec["last_gain"])
