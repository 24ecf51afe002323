"""The paper's figures drawn with matplotlib (Agg backend: PNG files, no display needed).

Each function takes the numbers ``minisense.reproduce`` measured (the same ones it writes to
JSON) and a path, draws one figure whose title and axes say what the paper's caption says, and
saves it as PNG. Nothing here computes a result.
"""

from __future__ import annotations

import io
import pathlib

import matplotlib

matplotlib.use("Agg")          # before pyplot: files only, works without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from minisense import files  # noqa: E402
from minisense.errors import MinisenseError  # noqa: E402

# The paper's colours for the layers a SENSE step perturbs (Figs. 6-7); car layers added.
LAYER_COLOURS = {"layer1.0": "tab:red", "layer2.0": "tab:green", "fc": "tab:blue",
                 "fc1": "tab:blue", "fc2": "tab:purple"}
DPI = 120
SPLIT_COLOURS = {"train": "0.5", "validation": "tab:blue", "test": "red"}   # as climb_map's


def _save(fig, path) -> None:
    fig.savefig(path, dpi=DPI, bbox_inches="tight", format="png")
    plt.close(fig)


def check_png(path, option: str) -> None:
    """A one-line error unless ``path`` (given as ``option``) names a PNG file."""
    if path is not None and pathlib.Path(path).suffix.lower() != ".png":
        raise MinisenseError(f"{option} {path} does not end in .png; the picture is a PNG: give "
                             "a file name ending in .png")


def save_png(fig, out) -> pathlib.Path:
    """``fig`` as the PNG ``out``, written atomically (a whole picture or none)."""
    buffer = io.BytesIO()
    _save(fig, buffer)
    files.atomic_write_bytes(out, buffer.getvalue())
    return pathlib.Path(out)


def sparsity_curve(path, title: str, sparsity: list[float], accuracy: list[list[float]],
                   seeds: list[int]) -> None:
    """Figs. 2 and 12: test accuracy (%) against sparsity (%), the mean of the seeds as a line,
    their range shaded, each seed a dot. accuracy[i][j]: level i, seed j, fractions."""
    acc = 100 * np.asarray(accuracy, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.fill_between(sparsity, acc.min(axis=1), acc.max(axis=1), alpha=0.25,
                    label=f"range over {len(seeds)} seeds")
    ax.plot(sparsity, acc.mean(axis=1), "o-", label="mean")
    for j in range(len(seeds)):
        ax.plot(sparsity, acc[:, j], ".", color="0.3", markersize=4,
                label="each seed" if j == 0 else None)
    ax.set_xlabel("sparsity p (% of weights that are zero)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    _save(fig, path)


def neighbour_histograms(path, title: str, layers: dict) -> None:
    """Figs. 3 and 9: per layer, a histogram of the first neighbours' test accuracy (%), the
    original network's accuracy as a red vertical line, the fraction better in the panel.

    layers: name -> {"counts": (B,), "edges": (B+1,) fractions, "accuracy": (K,),
    "original_accuracy": float, "better_fraction": float}.
    """
    fig, axes = plt.subplots(1, len(layers), figsize=(4.2 * len(layers), 3.6), squeeze=False)
    for ax, (name, d) in zip(axes[0], layers.items()):
        acc = d["accuracy"]
        ax.stairs(d["counts"], 100 * np.asarray(d["edges"]), fill=True, color="0.55")
        ax.axvline(100 * d["original_accuracy"], color="red", linewidth=1.5,
                   label=f"original {100 * d['original_accuracy']:.2f}%")
        ax.set_title(f"{name}: {100 * d['better_fraction']:.1f}% of {len(acc)} "
                     "neighbours better", fontsize=9)
        ax.set_xlabel("test accuracy of first neighbour (%)")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("first neighbours")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _save(fig, path)


def neighbourhood_maps(path, title: str, panels: list[dict]) -> None:
    """Figs. 4, 10, 11: 3-D maps, embedding (x, y) and test accuracy (%) as z.

    panels: each {"title", "x", "y", "z" (fractions), "original" (index of the original network),
    "elev", "azim", "xlabel"}; the original is the blue dot, neighbours coloured by accuracy.
    """
    cols = min(2, len(panels))
    rows = -(-len(panels) // cols)
    fig = plt.figure(figsize=(5.4 * cols, 4.6 * rows))
    for i, p in enumerate(panels):
        # computed_zorder off: drawn in call order, so the original stays on top of the cloud.
        ax = fig.add_subplot(rows, cols, i + 1, projection="3d", computed_zorder=False)
        ax.tick_params(labelsize=7)
        x, y, z = (np.asarray(p[k], dtype=np.float64) for k in ("x", "y", "z"))
        z = 100 * z
        others = np.arange(len(x)) != p["original"]
        ax.scatter(x[others], y[others], z[others], c=z[others], cmap="viridis", s=6,
                   depthshade=False)
        o = p["original"]
        ax.scatter([x[o]], [y[o]], [z[o]], color="blue", s=60, edgecolor="white",
                   label=f"original {z[o]:.2f}%", depthshade=False)
        ax.view_init(elev=p["elev"], azim=p["azim"])
        ax.set_xlabel(f"{p['xlabel']} 1", fontsize=8)
        ax.set_ylabel(f"{p['xlabel']} 2", fontsize=8)
        ax.set_zlabel("test accuracy (%)", fontsize=8, labelpad=10)
        if p["elev"] == 0:                  # side view: the second axis points at the reader
            ax.set_yticks([])
            ax.set_ylabel("")
        elif p["elev"] == 90:               # top view: accuracy points at the reader
            ax.set_zticks([])
            ax.set_zlabel("")
        ax.set_title(p["title"], fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def climb_map(path, title: str, x, y, hood, best, path_points: list[int],
              along_path: dict[str, list[float]]) -> None:
    """Fig. 5: every network of every neighbourhood on a 2-D t-SNE map, a colour per
    neighbourhood, each neighbourhood's best black, the path from best to best in red; beside
    it, the accuracies (%) along the path: training (what SENSE selects on), validation, test.

    hood : (n,) neighbourhood of each point (-1: the start network); best : (n,) bool;
    path_points : indices of the start and each best in order; along_path : split name ->
    accuracy at the start and after each move.
    """
    x, y, hood, best = (np.asarray(a) for a in (x, y, hood, best))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.8), gridspec_kw={"width_ratios": [2, 1]})
    colours = plt.get_cmap("tab10")
    for h in range(int(hood.max()) + 1):
        m = (hood == h) & ~best
        ax.scatter(x[m], y[m], s=8, color=colours(h % 10), label=f"neighbourhood {h + 1}")
    ax.scatter(x[best], y[best], s=30, color="black", label="best neighbour", zorder=3)
    ax.plot(x[path_points], y[path_points], "-", color="red", linewidth=1.5, zorder=4,
            label="path")
    start = path_points[0]
    ax.scatter([x[start]], [y[start]], s=60, color="red", marker="*", zorder=5, label="start")
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.legend(fontsize=7, markerscale=1.5)
    styles = {"train": ("0.5", "s--"), "validation": ("tab:blue", "^:"), "test": ("red", "o-")}
    for split, values in along_path.items():
        colour, style = styles[split]
        ax2.plot(range(len(values)), 100 * np.asarray(values), style, color=colour,
                 label=split + (" (selection)" if split == "train" else ""))
    ax2.set_xlabel("neighbourhood (0: start)")
    ax2.set_ylabel("accuracy (%)")
    ax2.legend(fontsize=7)
    ax2.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def search_curves(path, title: str, steps: list[dict], backprop: list[dict],
                  backprop_batches_per_epoch: float, steps_every: int = 1) -> None:
    """Figs. 6-8: left, SENSE's validation accuracy coloured by the layer each step perturbed,
    and its test accuracy (black, orange markers), against the neighbourhood step; right, test
    accuracy of backprop from the same initial network (black, violet markers) by epoch.

    steps : records with "step", "layer" (None for the start), "validation_accuracy",
    "test_accuracy"; backprop : records with "batches", "validation_accuracy", "test_accuracy".
    """
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True,
                                  gridspec_kw={"width_ratios": [2, 1]})
    step = np.array([r["step"] for r in steps])
    val = 100 * np.array([r["validation_accuracy"] for r in steps])
    test = 100 * np.array([r["test_accuracy"] for r in steps])
    seen = set()
    for i in range(1, len(steps)):
        layer = steps[i]["layer"]
        ax.fill_between(step[i - 1:i + 1], 0, val[i - 1:i + 1], alpha=0.35, linewidth=0,
                        color=LAYER_COLOURS.get(layer, "tab:gray"),
                        label=None if layer in seen else f"validation, swaps in {layer}")
        seen.add(layer)
    ax.plot(step, val, color="0.2", linewidth=0.8)
    marks = max(1, len(step) // 30)
    ax.plot(step, test, "-", color="black", marker="o", markerfacecolor="orange",
            markevery=marks, markersize=4, label="test (SENSE)")
    ax.set_xlabel("SENSE step (one neighbourhood each)" if steps_every == 1 else
                  f"SENSE step (one neighbourhood each; a point per {steps_every} steps)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("SENSE, no backprop", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    epochs = np.array([r["batches"] for r in backprop]) / backprop_batches_per_epoch
    ax2.plot(epochs, 100 * np.array([r["test_accuracy"] for r in backprop]), "-", color="black",
             marker="o", markerfacecolor="violet", markersize=4, label="test (backprop)")
    ax2.plot(epochs, 100 * np.array([r["validation_accuracy"] for r in backprop]), ":",
             color="violet", label="validation (backprop)")
    ax2.set_xlabel("backprop epoch (straight-through, mask fixed)")
    ax2.set_title("backprop from the same initial network", fontsize=9)
    ax2.legend(fontsize=7)
    ax2.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def family_curves(path, title: str, curve: list[dict], damage: dict) -> None:
    """Family ensembles (the paper's future work): left, test accuracy of the ensemble of the
    first k members (summed logits, vote) against the best of them by validation and their mean;
    then for each kind of damage, test accuracy of one network (mean, band of one standard
    deviation) and of the ensemble against the amount of damage.

    curve : records with "members", "sum", "vote", "best_member_test", "mean_member_test";
    damage : kind -> records with "amount", "single_mean", "single_std", "ensemble_mean",
    "ensemble_std".
    """
    fig, axes = plt.subplots(1, 1 + len(damage), figsize=(4.2 * (1 + len(damage)), 3.8))
    axes = np.atleast_1d(axes)
    k = [r["members"] for r in curve]
    ax = axes[0]
    for key, label, style in (("sum", "ensemble, summed logits", "o-"),
                              ("vote", "ensemble, majority vote", "s--"),
                              ("best_member_test", "best member (by validation)", "^-"),
                              ("mean_member_test", "mean member", ".:")):
        ax.plot(k, [100 * r[key] for r in curve], style, label=label, markersize=4)
    ax.set_xlabel("members of the family")
    ax.set_ylabel("test accuracy (%)")
    ax.set_xticks(k)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    names = {"swaps": "random bit swaps per network", "delete": "fraction of weights deleted"}
    for ax, (kind, rows) in zip(axes[1:], damage.items()):
        x = np.array([r["amount"] for r in rows], dtype=float)
        for who, colour in (("single", "tab:gray"), ("ensemble", "tab:blue")):
            mean = 100 * np.array([r[f"{who}_mean"] for r in rows])
            std = 100 * np.array([r[f"{who}_std"] for r in rows])
            ax.plot(x, mean, "o-", color=colour, markersize=4,
                    label="one network" if who == "single" else "family ensemble")
            ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.2, linewidth=0)
        if kind == "swaps":
            ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel(names.get(kind, kind))
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


def transfer_curves(path, title: str, curves: dict, reference: float) -> None:
    """Transfer: test accuracy against seconds of SENSE from each start, and the accuracy of
    p-SIREN trained on the task itself (dashed).

    curves : start name -> step records with "seconds" and "test_accuracy".
    """
    fig, ax = plt.subplots(figsize=(6.5, 4))
    labels = {"transfer": "from the other task's p-SIREN network",
              "same_family": "from the same family, weights at random places"}
    for name, records in curves.items():
        ax.plot([r.get("seconds", 0.0) for r in records],
                [100 * r["test_accuracy"] for r in records], label=labels.get(name, name))
    ax.axhline(100 * reference, color="black", linestyle="--", linewidth=1,
               label="p-SIREN trained on the task")
    ax.set_xlabel("seconds of SENSE")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=9)
    _save(fig, path)
