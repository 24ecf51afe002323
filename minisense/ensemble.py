"""Ensembles of a network family, and their tolerance of damage (the paper's future work).

The paper's conclusion expects that "utilizing the network families in ensembles would lead to
robust performance". The members here are SENSE networks of one family (``minisense.chains``),
or any checkpoints of one architecture. Every member computes exactly in integers
(``network.exact_logits``); the ensemble combines them two ways:

* **summed logits**: members of one start share their integer thresholds and last gain (a search
  moves weights only), so their integer logits Z are on one scale and are summed as integers.
  Members with other thresholds or gains are summed as real logits, ``logit_scale * Z``
  (float64): the scale each network's softmax was trained to, when it was.
* **majority vote** of the members' predicted classes; a tie goes to the tied class with the
  larger summed logits.

Damage (:func:`damage`): ``swaps`` random bit swaps (a nonzero weight moved to a zero position of
its layer, so the family stays) or the deletion of a fraction of the nonzero weights (set to 0,
like the synaptic pruning the paper starts from), each member damaged with its own generator.
"""

from __future__ import annotations

import itertools
import pathlib

import numpy as np

from minisense import checkpoint, runs
from minisense.data import architecture_for, load_dataset
from minisense.errors import MinisenseError
from minisense.network import Network, exact_logits
from minisense.swaps import apply_swap

DAMAGE_KINDS = ("swaps", "delete")
MAX_SWAPS = 100_000          # swaps per network: each is a step in Python, and a run must end
MAX_DAMAGE_SEEDS = 1000


def check_damage(nets: list[Network], kind: str, amounts, seeds: int, names=None) -> None:
    """One-line errors, before any work, for damage that cannot mean what it says: swaps are
    whole numbers in 0..``MAX_SWAPS`` (half a swap is no swap), a deleted fraction is in [0, 1],
    the seeds are 1..``MAX_DAMAGE_SEEDS``, and swaps need in every layer with nonzero weights a
    zero to move one to (a dense member has none)."""
    if kind not in DAMAGE_KINDS:
        raise MinisenseError(f"unknown damage {kind!r}; choose one of {', '.join(DAMAGE_KINDS)}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_DAMAGE_SEEDS:
        raise MinisenseError(f"damage seeds must be a whole number in 1..{MAX_DAMAGE_SEEDS}, got "
                             f"{seeds!r}")
    for amount in amounts:
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount != amount:
            raise MinisenseError(f"damage amount {amount!r} is not a number")
        if kind == "delete" and not 0 <= amount <= 1:
            raise MinisenseError(f"a deleted fraction must be in [0, 1], got {amount:g}")
        if kind == "swaps" and not (float(amount).is_integer() and 0 <= amount <= MAX_SWAPS):
            raise MinisenseError(f"--amount {amount:g} is not a whole number of swaps in "
                                 f"0..{MAX_SWAPS}; give whole swaps (half a swap is none)")
    if kind == "swaps" and any(amounts):
        for i, net in enumerate(nets):
            for layer, counts in net.family().items():
                if counts["-1"] + counts["+1"] and not counts["0"]:
                    who = names[i] if names else f"member {i}"
                    raise MinisenseError(f"{who}: layer {layer} has no zero weight, so no bit "
                                         "swap exists in it (a dense network); use --damage "
                                         "delete, or members with zeros")
            if not any(c["-1"] + c["+1"] for c in net.family().values()):
                raise MinisenseError(f"{names[i] if names else f'member {i}'} has no nonzero "
                                     "weight to swap; use members with nonzero weights")


def _numbered(folders, prefix: str) -> list[pathlib.Path]:
    """``prefix<i>`` folders in the order of i."""
    def number(p):
        return int(p.name[len(prefix):]) if p.name[len(prefix):].isdigit() else 0
    return sorted(folders, key=number)


def member_paths(paths) -> list[pathlib.Path]:
    """The checkpoints that ``paths`` name: a checkpoint (a run folder or its .npz/.json), a
    search folder or a backprop line's (its ``best/``), a chains folder (every
    ``chain-<i>/best``), or an ensemble's folder of a DAgger round (every ``member-<i>``)."""
    found = []
    for path in map(pathlib.Path, paths):
        chains = _numbered([p.parent for p in path.glob("chain-*/best")], "chain-")
        members = _numbered([p.parent for p in path.glob("member-*/model.npz")], "member-")
        if (path / runs.STATE_FILE).exists():
            found.append(path / "best")
        elif (path / runs.BACKPROP_FILE).exists():
            if not (path / "best").is_dir():
                raise MinisenseError(f"{path} holds a backprop line's records but no network "
                                     "(best/); run the line again to keep its networks")
            found.append(path / "best")
        elif chains:
            found += [c / "best" for c in chains]
        elif members:
            found += members
        else:
            found.append(path)
    if not found:
        raise MinisenseError("an ensemble needs at least one member: name checkpoints, search "
                             "folders or a --chains folder")
    return found


def load_members(paths) -> tuple[list[Network], list[dict], list[pathlib.Path]]:
    """The members' networks, metadata and checkpoint paths; all of one architecture."""
    found = member_paths(paths)
    loaded = [checkpoint.load(p) for p in found]
    kinds = {net.architecture for net, _ in loaded}
    if len(kinds) > 1:
        raise MinisenseError(f"ensemble members of different architectures ({', '.join(kinds)}); "
                             "give members of one task")
    return [n for n, _ in loaded], [m for _, m in loaded], found


def commensurate(nets: list[Network]) -> bool:
    """Whether the members' integer logits are on one scale: the same thresholds and last
    gain, as members of one family searched from one start have."""
    return all(n.thresholds == nets[0].thresholds and n.last_gain == nets[0].last_gain
               for n in nets)


def member_logits(nets: list[Network], images: np.ndarray) -> np.ndarray:
    """(m, n, classes): every member's logits on ``images``, int64 when commensurate, else
    real logits (float64)."""
    if commensurate(nets):
        return np.stack([exact_logits(net, images) for net in nets])
    return np.stack([net.logit_scale * exact_logits(net, images).astype(np.float64)
                     for net in nets])


def combine(logits: np.ndarray) -> dict[str, np.ndarray]:
    """The ensemble's predicted classes (n,) from member logits (m, n, classes): by summed
    logits (first class on ties, as argmax) and by majority vote (ties by summed logits)."""
    summed = logits.sum(axis=0)
    votes = np.zeros(summed.shape, dtype=np.int64)
    rows = np.arange(summed.shape[0])
    for member in logits.argmax(axis=2):
        votes[rows, member] += 1
    tied = votes == votes.max(axis=1, keepdims=True)
    by_sum = np.where(tied, summed, -np.inf if summed.dtype.kind == "f" else np.iinfo(np.int64).min)
    return {"sum": summed.argmax(axis=1), "vote": by_sum.argmax(axis=1)}


def evaluate(nets: list[Network], images: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy of each member and of the ensemble (summed logits, vote), and the fraction of
    images on which each pair of members disagrees, on one split."""
    logits = member_logits(nets, images)
    predicted = logits.argmax(axis=2)
    combined = combine(logits)
    pairs = {f"{i}-{j}": float((predicted[i] != predicted[j]).mean())
             for i, j in itertools.combinations(range(len(nets)), 2)}
    return {"members": [float((p == labels).mean()) for p in predicted],
            "sum": float((combined["sum"] == labels).mean()),
            "vote": float((combined["vote"] == labels).mean()),
            "disagreement": pairs,
            "mean_disagreement": float(np.mean(list(pairs.values()))) if pairs else 0.0}


# -- damage ------------------------------------------------------------------------------------

def damage(net: Network, kind: str, amount: float, rng: np.random.Generator) -> Network:
    """A damaged copy of ``net``: ``amount`` random bit swaps (kind "swaps"; each moves a
    uniformly chosen nonzero weight of the whole network to a uniformly chosen zero position of
    its layer) or the deletion of ``amount`` (a fraction) of its nonzero weights (kind "delete")."""
    if kind not in DAMAGE_KINDS:
        raise MinisenseError(f"unknown damage {kind!r}; choose one of {', '.join(DAMAGE_KINDS)}")
    weights = net.ternary_weights()
    names = list(weights)
    flat = {name: w.reshape(-1) for name, w in weights.items()}
    nonzero = np.concatenate([np.flatnonzero(flat[n]) for n in names])
    owner = np.repeat(np.arange(len(names)), [np.count_nonzero(flat[n]) for n in names])
    if kind == "delete":
        if not 0 <= amount <= 1:
            raise MinisenseError(f"a deleted fraction must be in [0, 1], got {amount}")
        chosen = rng.choice(nonzero.size, int(round(amount * nonzero.size)), replace=False)
        for k in chosen:
            flat[names[owner[k]]][nonzero[k]] = 0
    else:
        if not (float(amount).is_integer() and 0 <= amount <= MAX_SWAPS):
            raise MinisenseError(f"{amount!r} is not a whole number of swaps in 0..{MAX_SWAPS}")
        for _ in range(int(amount)):
            # A weight already moved is a nonzero weight like any other: draw from the current
            # layout, layer in proportion to its nonzero count.
            counts = np.array([np.count_nonzero(flat[n]) for n in names])
            layer = names[rng.choice(len(names), p=counts / counts.sum())]
            src = rng.choice(np.flatnonzero(flat[layer]))
            dst = rng.choice(np.flatnonzero(flat[layer] == 0))
            apply_swap(flat[layer], src, dst)
    damaged = net.with_ternary(weights)
    return damaged


def damage_curve(nets: list[Network], images: np.ndarray, labels: np.ndarray, kind: str,
                 amounts: list[float], seeds: int = 3) -> list[dict]:
    """Accuracy under ``kind`` damage of each amount: every member damaged on its own (damage
    seed s, member k: generator ``[s, k, level]``), alone ("single": mean and standard deviation
    over members and seeds) and as the ensemble of the damaged members (summed logits; mean and
    standard deviation over seeds)."""
    check_damage(nets, kind, amounts, seeds)
    rows = []
    for level, amount in enumerate(amounts):
        single, together = [], []
        for s in range(seeds):
            damaged = [damage(net, kind, amount, np.random.default_rng([s, k, level]))
                       for k, net in enumerate(nets)]
            logits = member_logits(damaged, images)
            single += [float((m.argmax(axis=1) == labels).mean()) for m in logits]
            together.append(float((combine(logits)["sum"] == labels).mean()))
        rows.append({"amount": amount, "single_mean": float(np.mean(single)),
                     "single_std": float(np.std(single)),
                     "ensemble_mean": float(np.mean(together)),
                     "ensemble_std": float(np.std(together))})
    return rows


def report(paths, dataset: str | None = None, data_dir=None, damage_kind: str | None = None,
           amounts: tuple = (), seeds: int = 3) -> dict:
    """``minisense ensemble``: members, ensemble and disagreement on validation and test; with
    ``damage_kind``, the damage curve on the test split."""
    nets, metas, found = load_members(paths)
    if damage_kind is not None:
        check_damage(nets, damage_kind, list(amounts), seeds, [str(p) for p in found])
    name = dataset or metas[0].get("dataset")
    if name is None:
        raise MinisenseError(f"checkpoint {found[0]} names no dataset; pass --dataset")
    data = load_dataset(name, data_dir)
    if architecture_for(data.name) != nets[0].architecture:
        raise MinisenseError(f"the members are {nets[0].architecture} networks; {data.name} needs "
                             f"{architecture_for(data.name)} networks")
    result = {"dataset": data.name, "members": [str(p) for p in found],
              "commensurate": commensurate(nets),
              "same_family": all(n.family() == nets[0].family() for n in nets),
              "validation": evaluate(nets, data.validation.images, data.validation.labels),
              "test": evaluate(nets, data.test.images, data.test.labels)}
    if damage_kind is not None:
        result["damage"] = {"kind": damage_kind, "seeds": seeds, "split": "test",
                            "curve": damage_curve(nets, data.test.images, data.test.labels,
                                                  damage_kind, list(amounts), seeds)}
    return result
