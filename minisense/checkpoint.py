"""Checkpoints of binary networks: int8 ternary weights in ``.npz`` beside JSON metadata.

A checkpoint is two files with one stem, ``model.npz`` and ``model.json``:

* ``model.npz`` holds one int8 array per weighted layer, named as in the paper's figures
  (``layer1.0``, ``layer2.0``, ``fc`` or ``fc1``/``fc2``), values in {-1, 0, +1}, in the layer's
  own layout ((out, in, kh, kw) or (out, in)). It loads with ``allow_pickle=False``.
* ``model.json`` holds what is needed to compute the network exactly (architecture, integer
  thresholds T_l, the last layer's gain) and what a reader wants to know (dataset, requested and
  actual sparsity, each layer's family of -1/0/+1 counts, seed, accuracies, command line,
  package version). ``metadata`` passed to :func:`save` is merged in.

Writes are atomic (a temporary file renamed over the old one), so an interrupted run never
leaves a half-written checkpoint.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import pathlib

import numpy as np

from minisense import __version__, files
from minisense.data import DATASETS, architecture_for
from minisense.errors import MinisenseError
from minisense.fast.kernels import INT32_LIMIT, KEY
from minisense.network import ARCHITECTURES, Network, binary_network, build_network

FORMAT = "minisense-checkpoint"
FORMAT_VERSION = 1
GAIN_LIMIT = 1e12               # the last gain's bound either way (it scales real logits)


def checkpoint_paths(path) -> tuple[pathlib.Path, pathlib.Path]:
    """(npz, json) for a run folder (``model.*`` inside it; any path not ending in .npz or .json
    counts as one), or a checkpoint's .npz or .json."""
    path = pathlib.Path(path)
    # Only .npz/.json name a checkpoint file: a folder such as ``p90-lr0.01`` has a "suffix" too,
    # and taking it for a file stem made two such runs write one metrics.json beside each other.
    if path.is_dir() or path.suffix not in (".npz", ".json"):
        path = path / "model.npz"
    return path.with_suffix(".npz"), path.with_suffix(".json")


def sparsity_percent(net: Network) -> float:
    family = net.family()
    zeros = sum(f["0"] for f in family.values())
    total = sum(sum(f.values()) for f in family.values())
    return 100.0 * zeros / total


def save(net: Network, path, metadata: dict | None = None, sync: bool = True,
         force: bool = False) -> pathlib.Path:
    """Save a binary network; returns the .npz path. ``path`` as in :func:`checkpoint_paths`.
    A checkpoint already there is replaced only with ``force``."""
    npz_path, json_path = checkpoint_paths(path)
    held = [p for p in (npz_path, json_path) if p.exists()]
    if held and not force:
        raise MinisenseError(f"checkpoint {held[0]} already exists; pass force=True to replace "
                             "it, or choose another path")
    weights = net.ternary_weights()
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **weights)
    # The two files are renamed one after the other: the JSON names its .npz by hash, so a save
    # killed between the renames leaves a pair that load() refuses instead of mixing.
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "minisense_version": __version__,
        "weights_sha256": hashlib.sha256(buffer.getvalue()).hexdigest(),
        "architecture": net.architecture,
        "thresholds": net.thresholds,
        "last_gain": float(net.last_gain),
        "logit_scale": net.logit_scale,
        "actual_sparsity": sparsity_percent(net),
        "family": net.family(),
        **(metadata or {}),
    }
    files.atomic_write_bytes(npz_path, buffer.getvalue(), sync)
    files.atomic_write_json(json_path, meta, sync)
    return npz_path


def load(path, architecture: str | None = None) -> tuple[Network, dict]:
    """Load a checkpoint as a binary :class:`Network` and its metadata.

    ``architecture``, if given, must match the checkpoint's: loading a car network where an MNIST
    one is needed is an error, not a silently wrong result.
    """
    npz_path, json_path = checkpoint_paths(path)
    for p in (npz_path, json_path):
        if not p.is_file():
            raise MinisenseError(f"checkpoint file {p} does not exist; pass a run folder or the "
                                 "model.npz written by 'minisense train'")
    meta = read_meta(json_path)
    arch = meta["architecture"]
    if architecture is not None and arch != architecture:
        raise MinisenseError(f"checkpoint {npz_path} is a {arch} network but the {architecture} "
                             f"network is needed here; pass a {architecture} checkpoint")
    try:
        with np.load(npz_path, allow_pickle=False) as f:
            weights = {name: f[name] for name in f.files}
        digest = hashlib.sha256(npz_path.read_bytes()).hexdigest()
    except Exception as e:  # zipfile/ValueError/OSError: all mean the same to a user
        raise MinisenseError(f"checkpoint weights {npz_path} are unreadable ({type(e).__name__}: "
                             f"{e}); re-create the checkpoint") from None
    expected = meta.get("weights_sha256")          # absent in checkpoints saved before it
    if expected is not None and digest != expected:
        raise MinisenseError(f"checkpoint {npz_path} does not match its {json_path.name} "
                             "(a save cut short between the two files?); re-create the "
                             "checkpoint, or restore the pair from a backup")
    check_weights(weights, arch, f"checkpoint {npz_path}")
    return with_weights(meta, weights, json_path), meta


def read_meta(json_path) -> dict:
    """A checkpoint's metadata (``model.json``), checked: a minisense checkpoint of a known
    architecture, a known dataset of that architecture (or none), and thresholds and last gain
    that the integer arithmetic can compute without overflow (:func:`threshold_limits`)."""
    json_path = pathlib.Path(json_path)
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise MinisenseError(f"checkpoint metadata {json_path} is unreadable "
                             f"({type(e).__name__}: {e}); re-create the checkpoint") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise MinisenseError(f"{json_path} is not a minisense checkpoint (no "
                             f"\"format\": \"{FORMAT}\"); pass the model.json written by "
                             "'minisense train'")
    version = meta.get("format_version", FORMAT_VERSION)     # absent in the oldest ones
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise MinisenseError(f"{json_path} is of checkpoint format version {version!r}, not "
                             f"{FORMAT_VERSION}; re-create it with this minisense")
    arch = meta.get("architecture")
    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise MinisenseError(f"checkpoint {json_path} names unknown architecture {arch!r}; "
                             f"it must be one of {', '.join(ARCHITECTURES)}")
    dataset = meta.get("dataset")
    if dataset is not None and (not isinstance(dataset, str) or dataset not in DATASETS
                                or architecture_for(dataset) != arch):
        raise MinisenseError(f"checkpoint metadata {json_path}: dataset {dataset!r} is not a "
                             f"dataset of the {arch} network; re-create the checkpoint")
    expected = meta.get("weights_sha256")
    if expected is not None and not isinstance(expected, str):
        raise MinisenseError(f"checkpoint metadata {json_path}: weights_sha256 is {expected!r}, "
                             "not a hex digest; re-create the checkpoint")
    _check_scales(meta, arch, json_path)
    return meta


def check_weights(weights: dict, architecture: str, where: str) -> None:
    """One-line errors unless ``weights`` are exactly the ``architecture``'s layers, each int8 of
    the layer's shape with values in {-1, 0, +1}."""
    net = build_network(architecture, 0)
    if set(weights) != set(net.weighted):
        raise MinisenseError(f"{where} has layers {sorted(weights)} but the {architecture} "
                             f"network has {list(net.weighted)}; it is of another architecture")
    for name, layer in net.weighted.items():
        w = weights[name]
        if w.shape != layer.weight.shape:
            raise MinisenseError(f"{where}: layer {name} has shape {w.shape}, the "
                                 f"{architecture} network needs {layer.weight.shape}")
        if w.dtype != np.int8 or not np.isin(w, (-1, 0, 1)).all():
            raise MinisenseError(f"{where}: layer {name} is {w.dtype}, not int8 in "
                                 "{-1, 0, +1}; only binary networks are checkpointed")


def with_weights(meta: dict, weights: dict, json_path) -> Network:
    """The network a checkpoint's metadata describes (architecture, thresholds, last gain),
    holding ``weights`` (name -> int8 array of the layer's shape)."""
    _check_scales(meta, meta.get("architecture"), json_path)
    try:
        net = binary_network(meta["architecture"], weights, meta["thresholds"], meta["last_gain"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
        raise MinisenseError(f"checkpoint metadata {json_path} lacks valid thresholds or "
                             f"last_gain ({e}); re-create the checkpoint") from None
    return net


def threshold_limits(architecture: str) -> dict[str, int]:
    """The largest threshold T_l each hidden layer may have: the next layer sums up to fan-in
    x T_l, and the fast delta evaluation keeps twice that (a change), or for the output layer
    ``KEY`` times that (a logit's rank key), in int32 (``fast.delta``). Below these bounds every
    integer of the network's arithmetic (int32 kernels, int64 and float64 sums) is exact."""
    names = list(build_network(architecture, 0).weighted.items())
    limits = {}
    for (name, _), (next_name, layer) in zip(names, names[1:]):
        factor = KEY if next_name == names[-1][0] else 2
        limits[name] = (INT32_LIMIT - 1) // (factor * layer.weight[0].size)
    return limits


def _check_scales(meta: dict, architecture, json_path) -> None:
    """Thresholds: one whole number per hidden layer in 1..its bound (:func:`threshold_limits`);
    the last gain finite and > 0."""
    if architecture not in ARCHITECTURES:
        raise MinisenseError(f"checkpoint {json_path} names unknown architecture "
                             f"{architecture!r}; it must be one of {', '.join(ARCHITECTURES)}")
    limits = threshold_limits(architecture)
    thresholds, gain = meta.get("thresholds"), meta.get("last_gain")
    if not isinstance(thresholds, dict) or set(thresholds) != set(limits):
        raise MinisenseError(f"checkpoint metadata {json_path}: thresholds must name the hidden "
                             f"layers {', '.join(limits)}; re-create the checkpoint")
    for name, t in thresholds.items():
        if isinstance(t, bool) or not isinstance(t, int) or t < 1:
            raise MinisenseError(f"checkpoint metadata {json_path}: threshold of {name} is "
                                 f"{t!r}, not a whole number >= 1; re-create the checkpoint")
        if t > limits[name]:
            raise MinisenseError(f"checkpoint metadata {json_path}: threshold of {name} is {t}, "
                                 f"above its bound {limits[name]} (the next layer's sums must "
                                 "fit int32 exactly); re-create the checkpoint")
    if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not 0 < gain < math.inf:
        raise MinisenseError(f"checkpoint metadata {json_path}: last_gain is {gain!r}, not a "
                             "finite number > 0; re-create the checkpoint")
    if gain > GAIN_LIMIT or gain < 1 / GAIN_LIMIT:
        raise MinisenseError(f"checkpoint metadata {json_path}: last_gain is {gain!r}, outside "
                             f"[1e-12, 1e12] (logits would overflow or vanish); re-create the "
                             "checkpoint")
