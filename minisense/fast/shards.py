"""A batch in shards on the machine's cores: p-SIREN's SGD steps (Algorithm 1) on every core.

A training step of ``minisense.fast.layers`` is a chain of NumPy calls; the matrix products can use
every core through BLAS, but the copies, pooling and HardTanh around them run on one. Here a
batch is split into ``SHARDS`` equal parts that go forward and backward through copies of the
layers (:func:`minisense.fast.layers.replica`: the weights shared, the work arrays their own) on
threads of their own, since NumPy leaves the interpreter lock while it works on large arrays.
The loss and its gradient are taken over the whole batch, so each shard's weight gradient is its
part of the batch's one, and a layer's gradient is the sum of its shards' (in shard order).

The result depends on the number of shards, never on the number of threads or cores: every
shard's matrix products run on one BLAS thread, and the sums go in a fixed order. So the same
seed gives the same weights bit for bit on any machine with the same BLAS, one core or many.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import threadpoolctl
from threadpoolctl import ThreadpoolController

from minisense.fast.layers import Scratch, Weighted, replica

# One shard per core of a 2-core machine; more shards only add copies and waiting (the results
# book compares 2, 4 and 6). The number is fixed, not the machine's core count, so that a seed
# gives the same weights everywhere.
SHARDS = 2


def blas_threads(controller: ThreadpoolController | None = None) -> int:
    """How many threads BLAS may use in this process (1 in a sweep's worker, which pins it)."""
    blas = (controller or ThreadpoolController()).select(user_api="blas").lib_controllers
    return max((lib.num_threads for lib in blas), default=1)


# -- one BLAS thread, counted over the whole process -------------------------------------------
# OpenBLAS's thread limit is one number for the whole process (NumPy's and SciPy's wheels: two
# libraries, each with its own). Every thread of a process therefore needs the same limit while
# any of them computes, and changing it from several threads went wrong twice over:
# * threadpoolctl 3.8 lets only one thread change a pthreads OpenBLAS's limit -- the first to
#   set one, until it leaves a ``with threadpool_limits`` -- and silently ignores every other
#   thread's. Our limits were not set in such a block, so that thread kept the control for good:
#   after ``reproduce fig3`` in the main thread, the one-thread limits of the tasks on an
#   in-process Dask worker's threads were dropped, their products ran on 2 BLAS threads, and
#   the float results changed (layer2.0's weight gradient rounds differently on 2 threads).
# * a limit one thread restores on its way out would change a sibling thread's products
#   mid-way (two tasks on a Dask worker's two threads).
# So every limit of minisense goes through this count: entering sets one thread (from any
# thread: it takes threadpoolctl's control for that moment and gives it back), and only the
# last user of the process to leave gives back the limits found by the first.

_BLAS_LOCK = threading.Lock()
_BLAS_USERS = 0
_BLAS_SAVED: dict = {}      # library path -> (its controller, the limit to give back)


def _set_blas(limits: list) -> None:
    """Set each (library controller, threads) of ``limits``, whichever thread calls."""
    control = getattr(getattr(threadpoolctl, "OpenBLASController", None),
                      "clear_controlling_thread", None)           # threadpoolctl >= 3.8
    if control is not None:
        control(force=True)
    try:
        for lib, threads in limits:
            lib.set_num_threads(threads)
    finally:
        if control is not None:
            control(force=True)


def hold_one_blas_thread(controller: ThreadpoolController | None = None) -> None:
    """BLAS on one thread from now until the matching :func:`release_blas_thread`."""
    global _BLAS_USERS
    libraries = (controller or ThreadpoolController()).select(user_api="blas").lib_controllers
    with _BLAS_LOCK:
        for lib in libraries:
            _BLAS_SAVED.setdefault(lib.filepath, (lib, lib.num_threads))
        _set_blas([(lib, 1) for lib in libraries])
        _BLAS_USERS += 1


def release_blas_thread() -> None:
    """End one :func:`hold_one_blas_thread`; the process's last gives BLAS its threads back."""
    global _BLAS_USERS
    with _BLAS_LOCK:
        _BLAS_USERS -= 1
        if _BLAS_USERS == 0:
            _set_blas(list(_BLAS_SAVED.values()))
            _BLAS_SAVED.clear()


@contextlib.contextmanager
def one_blas_thread():
    """A context in which BLAS runs on one thread (see the comment above)."""
    hold_one_blas_thread()
    try:
        yield
    finally:
        release_blas_thread()


class Workers:
    """``threads`` threads for parts of one piece of work (default: as many as BLAS may use).

    A context manager: inside it BLAS runs on one thread (:func:`one_blas_thread`), so that the
    threads, not BLAS, share the cores, and a product's rounding does not depend on the
    machine's thread count. It may be entered again and again (once per batch, say): the threads
    are made once and live as long as the object, and leaving only gives BLAS its threads back.
    """

    def __init__(self, threads: int | None = None):
        self._controller = ThreadpoolController()
        self.threads = max(1, blas_threads(self._controller) if threads is None else threads)
        self._executor = None

    def __enter__(self) -> Workers:
        hold_one_blas_thread(self._controller)
        if self.threads > 1 and self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads - 1)
        return self

    def __exit__(self, *exc) -> None:
        release_blas_thread()

    def map(self, function, parts: list) -> list:
        """``[function(i, part) for i, part in enumerate(parts)]``, the parts in ``threads``
        consecutive groups at once; the calling thread takes the first group. Call it inside the
        context."""
        if self._executor is None or len(parts) < 2:
            return [function(i, part) for i, part in enumerate(parts)]
        per = -(-len(parts) // self.threads)
        groups = [range(i, min(i + per, len(parts))) for i in range(0, len(parts), per)]

        def run(group):
            return [function(i, parts[i]) for i in group]

        # Each thread runs in a copy of the caller's context, so np.errstate reaches it.
        futures = [self._executor.submit(contextvars.copy_context().run, run, group)
                   for group in groups[1:]]
        results = run(groups[0])
        for future in futures:
            results += future.result()
        return results


class Shards:
    """Forward and backward passes of ``modules`` (a network's layers in order) over a batch in
    ``shards`` parts, at most ``threads`` at a time (:class:`Workers`). Equals the textbook
    ``Network.forward`` and ``backward`` over the whole batch (to float rounding); faster because
    the copies, pooling and HardTanh between the products run on every core.

    A context manager, as :class:`Workers`. ``forward`` returns the whole batch's output;
    ``backward`` takes the gradient of a loss over the whole batch and leaves each weighted
    layer's ``grad`` (and ``gain_grad``) as ``Network.backward`` would.
    """

    def __init__(self, modules: list, shards: int = SHARDS, threads: int | None = None):
        self.modules = modules
        self.shards = shards
        self.workers = Workers(min(shards, blas_threads() if threads is None else threads))
        self._work = [[Scratch() for _ in modules] for _ in range(shards)]
        self._replicas: list[list] = []
        self._bounds = np.zeros(1, dtype=int)

    def __enter__(self) -> Shards:
        self.workers.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.workers.__exit__(*exc)

    def _parts(self, x: np.ndarray) -> list[np.ndarray]:
        return [x[lo:hi] for lo, hi in zip(self._bounds, self._bounds[1:]) if hi > lo]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The modules' output for the batch ``x`` (its first axis the images)."""
        # Replicas of the modules as they are now: the caller may have changed weights, masks
        # or gains since the last batch.
        self._replicas = [[replica(m, work) for m, work in zip(self.modules, self._work[s])]
                          for s in range(self.shards)]
        self._bounds = np.linspace(0, len(x), self.shards + 1).round().astype(int)
        return np.concatenate(self.workers.map(self._forward, self._parts(x)))

    def _forward(self, s: int, x: np.ndarray) -> np.ndarray:
        for m in self._replicas[s]:
            x = m.forward(x)
        return x

    def backward(self, dy: np.ndarray) -> None:
        """Back-propagate the gradient ``dy`` of the last forward's output."""
        parts = self._parts(dy)
        self.workers.map(self._backward, parts)
        used = self._replicas[:len(parts)]
        for i, m in enumerate(self.modules):
            if isinstance(m, Weighted):
                m.grad = used[0][i].grad
                for row in used[1:]:
                    m.grad = m.grad + row[i].grad
                if m.learn_gain:
                    m.gain_grad = sum(row[i].gain_grad for row in used)

    def _backward(self, s: int, d: np.ndarray) -> None:
        for m in reversed(self._replicas[s]):
            d = m.backward(d)
            if d is None:
                break
