"""The paper's future work as figures (Section 5): ensembles of a network family, their tolerance
of damage, and transfer between tasks. Registered in ``minisense.reproduce`` beside the paper's
figures; each kind is a function of the figure's settings, as in ``minisense.experiments``.

``family``: M SENSE chains from one start (``minisense.chains``: a random p% network, or the 90%
p-SIREN network), then the ensemble of the first k members for k = 1..M against its best member
(best by validation), and accuracy under damage (random bit swaps, deleted weights) of one
network against the ensemble (``minisense.ensemble``). On the car, the ensemble also drives.

``transfer``: SENSE on one task (Fashion-MNIST) from the p-SIREN network of another (MNIST),
against SENSE from the same family with its weights at random places.
"""

from __future__ import annotations

import json

import numpy as np

from minisense import car, chains, checkpoint, data, ensemble, experiments, plots, runs
from minisense.network import Network

DAMAGE = {"swaps": [0, 1, 10, 100, 1000, 10_000], "delete": [0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5]}


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def members_curve(nets: list, split_val, split_test) -> list[dict]:
    """For k = 1..M: the test accuracy of the first k members' ensemble (summed logits, vote),
    of the best of them by validation, and their mean."""
    val = ensemble.member_logits(nets, split_val.images)
    test = ensemble.member_logits(nets, split_test.images)
    val_acc = (val.argmax(axis=2) == split_val.labels).mean(axis=1)
    test_acc = (test.argmax(axis=2) == split_test.labels).mean(axis=1)
    rows = []
    for k in range(1, len(nets) + 1):
        combined = ensemble.combine(test[:k])
        best = int(np.argmax(val_acc[:k]))
        rows.append({"members": k, "sum": float((combined["sum"] == split_test.labels).mean()),
                     "vote": float((combined["vote"] == split_test.labels).mean()),
                     "best_member": best, "best_member_test": float(test_acc[best]),
                     "mean_member_test": float(test_acc[:k].mean())})
    return rows


def family(fig, dataset, options, folder, out, quick, data_dir, checkpoint_path, seed,
           parallel, progress, log, title, **_):
    """Ensembles of a family grown by SENSE chains, and their damage curves (Section 5)."""
    if options["start"] == "psiren":
        _, path, _ = experiments.network90(dataset, out, quick, data_dir, checkpoint_path, seed,
                                           progress, log)
        start = dict(from_checkpoint=path)
    else:
        start = dict(sparsity=options["sparsity"])
    config = experiments.sense_config(options, seed)
    count = options["chains"]
    log(f"{fig.name}: {count} SENSE chains of {options['max_steps']} steps from "
        f"{'the 90% p-SIREN network' if 'from_checkpoint' in start else 'a random network'}")
    grown = chains.run_chains(config, count, folder / "chains", dataset, data_dir=data_dir,
                              **start, **parallel, progress=progress)
    nets = [checkpoint.load(chains.chain_folder(folder / "chains", i) / "best")[0]
            for i in range(count)]
    split = data.load_cached(dataset, None if data_dir is None else str(data_dir))
    curve = members_curve(nets, split.validation, split.test)
    damage = {kind: ensemble.damage_curve(nets, split.test.images, split.test.labels, kind,
                                          amounts, options["damage_seeds"])
              for kind, amounts in options["damage"].items()}
    results = {"family": grown, "members_curve": curve, "damage": damage}
    last = curve[-1]
    gain = 100 * (last["sum"] - last["best_member_test"])
    summary = (f"{count} members: ensemble test {_pct(last['sum'])} (summed logits), "
               f"{_pct(last['vote'])} (vote); best member by validation "
               f"{_pct(last['best_member_test'])} ({gain:+.2f} points), mean member "
               f"{_pct(last['mean_member_test'])}")
    for kind, rows in damage.items():
        worst = rows[-1]
        summary += (f"; {kind} {worst['amount']:g}: one network {_pct(worst['single_mean'])}, "
                    f"ensemble {_pct(worst['ensemble_mean'])}")
    if options.get("drive_episodes"):
        best = last["best_member"]
        drives = {name: car.drive(paths, options["drive_episodes"], seed=1000,
                                  workers=parallel["jobs"])
                  for name, paths in (("ensemble", [folder / "chains"]),
                                      ("best_member",
                                       [chains.chain_folder(folder / "chains", best) / "best"]))}
        results["drive"] = {k: {key: v for key, v in d.items() if key != "episodes"} |
                            {"returns": [e["return"] for e in d["episodes"]]}
                            for k, d in drives.items()}
        summary += (f"; closed loop on seeds 1000-{999 + options['drive_episodes']}: ensemble "
                    f"mean return {drives['ensemble']['mean_return']:.1f}, best member "
                    f"{drives['best_member']['mean_return']:.1f}")
    plots.family_curves(folder / f"{fig.name}.png", title, curve, damage)
    return results, summary


# -- transfer ----------------------------------------------------------------------------------

def shuffled(net: Network, rng: np.random.Generator) -> Network:
    """The network with each layer's ternary weights at random places: the same family (counts
    of -1, 0, +1 per layer) and thresholds, nothing of where training put the weights."""
    weights = {name: rng.permutation(w.reshape(-1)).reshape(w.shape)
               for name, w in net.ternary_weights().items()}
    other = net.with_ternary(weights)
    return other


def transfer(fig, dataset, options, folder, out, quick, data_dir, checkpoint_path, seed,
             parallel, progress, log, title, **_):
    """Transfer (Section 5): SENSE on ``dataset`` from the 90% p-SIREN network of
    ``options["source"]`` against SENSE from the same family at random places, the same step
    budget; p-SIREN trained on ``dataset`` itself as the reference line."""
    source = "digits" if quick else options["source"]
    start, path, _ = experiments.network90(source, out, quick, data_dir, checkpoint_path, seed,
                                           progress, log)
    _, own_path, own_meta = experiments.network90(dataset, out, quick, data_dir, None, seed,
                                                  progress, log)
    target = data.load_cached(dataset, None if data_dir is None else str(data_dir))
    searches = {}
    for name, net in (("transfer", start), ("same_family", shuffled(start, np.random.default_rng(
            seed)))):
        search_dir = folder / name
        if (search_dir / runs.STATE_FILE).exists():
            search = runs.resume(search_dir, data_dir)
        else:
            search = runs.SearchRun(net, target, experiments.sense_config(options, seed),
                                    search_dir)
        log(f"{fig.name}: SENSE on {dataset} from {name.replace('_', ' ')}, "
            f"{options['max_steps']} steps")
        with progress(range(options["max_steps"] - search.state["step"]),
                      label=f"SENSE steps, {name}") as bar:
            ticks = iter(bar)
            summary = search.run(on_step=lambda record, ticks=ticks: next(ticks, None))
        steps = [json.loads(line) for line in (search_dir / runs.LOG_FILE).read_text()
                 .splitlines()]
        searches[name] = {"summary": summary,
                      "curve": experiments.thin(steps, summary["best"]["step"])[0]}
        del search              # its caches (GBs on a whole training split) before the next
    reference = {"checkpoint": str(own_path), "test_accuracy": own_meta["accuracy"]["test"]}
    plots.transfer_curves(folder / f"{fig.name}.png", title,
                          {k: r["curve"] for k, r in searches.items()}, reference["test_accuracy"])
    t, f = searches["transfer"]["summary"], searches["same_family"]["summary"]
    first = {k: r["curve"][0]["test_accuracy"] for k, r in searches.items()}
    summary = (f"SENSE on {dataset} from the {source} p-SIREN network: test "
               f"{_pct(first['transfer'])} -> {_pct(t['best']['test_accuracy'])}; from the same "
               f"family at random places: {_pct(first['same_family'])} -> "
               f"{_pct(f['best']['test_accuracy'])} (best by validation, {options['max_steps']} "
               f"steps each); p-SIREN trained on {dataset}: {_pct(reference['test_accuracy'])}")
    return {"start": str(path), "runs": searches, "reference": reference}, summary


KINDS = {"family": family, "transfer": transfer}
