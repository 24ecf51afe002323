"""First neighbourhoods of a sparse binary network: their accuracies, maps and a climb through them.

Section 4.2 samples *first neighbours* of a p-SIREN network (one bit swap, Section 3.2) "multiple
distinct times" in one layer, and looks at them three ways:

* ``survey`` -- the test accuracy of every sampled neighbour, per layer, next to the original's
  (Figs. 3 and 9). Neighbours are scored by delta evaluation (``minisense.fast.delta``) in chunks
  that are independent tasks for ``minisense.sweep`` (local processes or a Dask cluster).
* ``weight_vectors`` + ``embed`` -- each neighbour as its weight vector, projected to 2-D by t-SNE,
  LLE or Isomap (scikit-learn's manifold module), accuracy as the third axis (Figs. 4, 10, 11).
* ``climb`` -- SENSE (Algorithm 2, Section 4.3) from the p-SIREN network, keeping every
  neighbourhood it looked at, for the climbing path of Fig. 5.

Weight vectors. Two networks of one family differ only where swaps moved weights, so the
Euclidean distance between any two of the sampled networks only involves the coordinates some
swap touched. ``weight_vectors`` keeps just those columns: the same distances (and the same PCA,
t-SNE's initialisation, as the dropped columns are constant) as the full vectors of all ~30,000
weights, with a few thousand columns at most.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np
from threadpoolctl import threadpool_limits

from minisense import data, sweep
from minisense.errors import MinisenseError
from minisense.fast.delta import DeltaEvaluator
from minisense.fast.shards import one_blas_thread
from minisense.network import Network
from minisense.swaps import sample_swaps

EMBEDDINGS = ("tsne", "lle", "isomap")


# -- sampling ------------------------------------------------------------------------------------

def first_neighbours(w: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                                   np.ndarray]:
    """``count`` DISTINCT first-neighbour swaps of one layer (all of them if it has fewer).

    w : int8 array, the layer's ternary weights. Returns (src, dst), int64 (count,), flat indices:
    ``sample_swaps``'s draws with repeats dropped (first kept), topped up until ``count`` remain.
    """
    flat = w.reshape(-1)
    available = int(np.count_nonzero(flat)) * int(flat.size - np.count_nonzero(flat))
    count = min(int(count), available)
    if 2 * count >= available:
        # Nearly the whole neighbourhood: list it all and shuffle (rejection would crawl).
        nonzero, zero = np.flatnonzero(flat), np.flatnonzero(flat == 0)
        pick = rng.permutation(available)[:count]
        return nonzero[pick // zero.size], zero[pick % zero.size]
    src, dst = np.empty(0, np.int64), np.empty(0, np.int64)
    while src.size < count:
        s, d = sample_swaps(w, 2 * (count - src.size), rng)
        src, dst = np.concatenate([src, s]), np.concatenate([dst, d])
        _, first = np.unique(src * flat.size + dst, return_index=True)
        keep = np.sort(first)[:count]
        src, dst = src[keep], dst[keep]
    return src, dst


# -- scoring, as sweep tasks ---------------------------------------------------------------------

_EVALUATOR: dict = {}          # this process's evaluator: (key, DeltaEvaluator), at most one
_EVALUATOR_LOCK = threading.Lock()


def score_swaps(network: dict, dataset: str, data_dir, split: str, images: int, layer: str,
                src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Images of ``split`` each first neighbour classifies correctly: (K,) int64. A sweep task.

    network : ``network_spec`` of the original; src, dst : (K,) flat swap indices in ``layer``.
    The evaluator (its cache is ~76 KiB per image) is built once per process and reused by the
    following chunks of the same network; a lock keeps Dask's threaded workers off each other.
    """
    digest = hashlib.sha256()
    for name, w in network["weights"].items():
        digest.update(name.encode() + w.tobytes())
    digest.update(repr((network["thresholds"], network["last_gain"])).encode())
    key = (digest.hexdigest(), dataset, str(data_dir), split, images)
    with _EVALUATOR_LOCK:
        if _EVALUATOR.get("key") != key:
            _EVALUATOR.clear()              # free the old cache before building the new one
            x, y = data.split_of(dataset, data_dir, split, images)
            evaluator = DeltaEvaluator(sweep.network_from(network), x, y, 1)
            _EVALUATOR.update(key=key, evaluator=evaluator)
        correct, _ = _EVALUATOR["evaluator"].score(layer, src, dst)
    return correct


def survey(net: Network, dataset: str, layers: list[str], count: int, seed: int, data_dir=None,
           split: str = "test", images: int = 0, chunk: int = 250, jobs: int = 1,
           backend: str = "joblib", scheduler: str | None = None,
           progress=sweep.no_progress) -> dict:
    """``count`` distinct first neighbours of ``net`` in each of ``layers``, scored (Section 4.2).

    Layer i's swaps come from ``default_rng([seed, i])`` (i its position in the network), so a
    layer's sample does not depend on which other layers are surveyed. Returns, per layer,
    ``{"original_accuracy": float, "images": n, "src": (K,), "dst": (K,), "accuracy": (K,)}``;
    accuracies are fractions of the ``split`` images (the first ``images``; 0: all).
    """
    weights = net.ternary_weights()
    for name in layers:
        if name not in weights:
            raise MinisenseError(f"layer {name!r} is not in the {net.architecture} network; its "
                                 f"layers are {', '.join(weights)}")
    x, y = data.split_of(dataset, data_dir, split, images)
    spec = sweep.network_spec(net)
    samples, tasks = {}, []
    for name in layers:
        rng = np.random.default_rng([seed, list(weights).index(name)])
        samples[name] = first_neighbours(weights[name], count, rng)
        src, dst = samples[name]
        for start in range(0, len(src), chunk):
            tasks.append(dict(network=spec, dataset=dataset, data_dir=data_dir, split=split,
                              images=images, layer=name, src=src[start:start + chunk],
                              dst=dst[start:start + chunk]))
    correct = sweep.run(score_swaps, tasks, jobs, backend, scheduler, progress,
                        label="first neighbours")
    original = net.accuracy(x, y)
    result, position = {}, 0
    for name in layers:
        src, dst = samples[name]
        chunks = -(-len(src) // chunk)
        counts = np.concatenate(correct[position:position + chunks]) if chunks else np.zeros(0)
        position += chunks
        result[name] = {"original_accuracy": original, "images": len(y), "src": src,
                        "dst": dst, "accuracy": counts.astype(np.float64) / len(y)}
    return result


# -- maps ----------------------------------------------------------------------------------------

def weight_vectors(base: np.ndarray, rows: list[list[tuple[int, int]]]) -> np.ndarray:
    """Networks as weight vectors, restricted to the coordinates any swap touches (docstring).

    base : (n,) the flat weights of the starting network; rows : per network, the flat swaps
    (src, dst) that lead to it from ``base``, applied in order ([] is ``base`` itself).
    Returns (len(rows), touched) float32.
    """
    touched = np.unique(np.array([i for row in rows for swap in row for i in swap] or [0],
                                 dtype=np.int64))
    column = {int(i): c for c, i in enumerate(touched)}
    vectors = np.tile(np.asarray(base, np.float32)[touched], (len(rows), 1))
    for r, row in enumerate(rows):
        for src, dst in row:
            vectors[r, column[int(dst)]] = vectors[r, column[int(src)]]
            vectors[r, column[int(src)]] = 0
    return vectors


def embed(vectors: np.ndarray, method: str, seed: int) -> np.ndarray:
    """2-D coordinates (n, 2) of the rows of ``vectors`` by t-SNE, LLE or Isomap (scikit-learn).

    One thread (t-SNE's gradient sums in threads, in an order that varies), dense eigensolvers
    (ARPACK starts from a random vector Isomap offers no seed for): the same input and seed give
    the same coordinates bit for bit. Neighbourhood sizes follow the number of points.
    """
    from sklearn import manifold

    n = len(vectors)
    if method not in EMBEDDINGS:
        raise MinisenseError(f"unknown embedding {method!r}; choose one of {', '.join(EMBEDDINGS)}")
    if n < 5:
        raise MinisenseError(f"an embedding needs at least 5 networks, got {n}; sample more "
                             "neighbours")
    neighbours = min(12, n - 1)
    if method == "tsne":
        model = manifold.TSNE(2, perplexity=min(30.0, (n - 1) / 3), init="pca",
                              learning_rate="auto", random_state=seed)
    elif method == "lle":
        model = manifold.LocallyLinearEmbedding(n_neighbors=neighbours, n_components=2,
                                                eigen_solver="dense", random_state=seed)
    else:
        model = manifold.Isomap(n_neighbors=neighbours, n_components=2, eigen_solver="dense")
    with threadpool_limits(1, user_api="openmp"), one_blas_thread():
        return np.asarray(model.fit_transform(vectors), dtype=np.float64)


def flat_offsets(weights: dict) -> dict[str, int]:
    """Where each layer starts in the concatenation of all layers' flat weights."""
    sizes = np.cumsum([0] + [w.size for w in weights.values()])
    return dict(zip(weights, sizes[:-1].tolist()))


# -- the climb of Fig. 5 -------------------------------------------------------------------------

def climb(search, moves: int, max_steps: int, progress=sweep.no_progress) -> dict:
    """Algorithm 2 from ``search``'s network (a ``sense.Search``) until ``moves`` moves were
    accepted or ``max_steps`` steps were taken; every step is one neighbourhood.

    Returns {"start": accuracies, "steps": [record of every step, with its layer, candidate swaps
    "src"/"dst" as flat indices into the concatenated weights, their "fitness" and "best"]}.
    Nothing is written to disk: this drives ``Search.step`` directly.
    """
    offsets = flat_offsets(search.fit.weights)
    steps, accepted = [], 0
    start = search.accuracies()
    with progress(range(max_steps), label="SENSE neighbourhoods") as bar:
        for _ in bar:
            record = search.step()
            if record is None:
                break
            hood = search.neighbourhood
            shift = offsets[hood["layer"]]
            steps.append({**record, "src": hood["src"] + shift, "dst": hood["dst"] + shift,
                          "fitness_of_candidates": hood["fitness"], "best": hood["best"]})
            accepted += record["accepted"]
            if accepted >= moves:
                break
    return {"start": start, "steps": steps}
