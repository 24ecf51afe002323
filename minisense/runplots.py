"""A picture of a run (``minisense plot RUN``): one PNG drawn from the series
``minisense.runlogs`` reads from a run folder; nothing here computes a result.

* A p-SIREN run (``minisense train``): training loss and validation accuracy per epoch,
  Algorithm 1's four steps shaded and named, each finished step's test accuracy, and the
  sparsity along the run (step 2's schedule from the config, and the zeros each finished step
  recorded).
* A SENSE search (``minisense search``): training (fitness images), validation and test
  accuracy against steps (with a zoomed inset once the climb levels off) and against seconds,
  the best network by validation marked, and the binary backprop line if the folder holds a
  ``backprop.jsonl``; moves accepted per layer, cumulative; the acceptance rate over a rolling
  window of steps (Algorithm 2).
* A family of chains (``search --chains``): one line per member, validation accuracy against
  seconds and test accuracy against steps, each member's best by validation starred.
* A backprop line (``search --backprop``): accuracy against batches and seconds.
* A DAgger run (``car dagger``): returns, frames and accuracies round by round, drawn by
  ``minisense.carplots.draw_dagger``.
"""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")          # before pyplot: files only, works without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from minisense import carplots, files, plots, runlogs, runs  # noqa: E402
from minisense.car import MAX_STEPS  # noqa: E402
from minisense.carplots import draw_dagger  # noqa: E402
from minisense.errors import MinisenseError  # noqa: E402
from minisense.psiren import ADDED_OPTIONS, STEPS  # noqa: E402
from minisense.runlogs import is_number  # noqa: E402

__all__ = ["PLOT_FILE", "draw_backprop", "draw_chains", "draw_dagger", "draw_psiren",
           "draw_search", "plot_run"]

PLOT_FILE = "plot.png"
STEP_COLOURS = {"dense": "tab:gray", "prune": "tab:orange", "sparse": "tab:green",
                "binary": "tab:purple"}


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _accuracy_lines(ax, x, s: dict) -> None:
    for split in ("train", "validation", "test"):
        ax.plot(x, 100 * s[f"{split}_accuracy"], color=plots.SPLIT_COLOURS[split], linewidth=1,
                marker="." if len(x) <= 60 else None,
                label="train (fitness images)" if split == "train" else split)


def _mark_best(ax, x: float, best: dict, label: bool) -> None:
    ax.axvline(x, color="black", linestyle=":", linewidth=1)
    ax.plot([x], [100 * best["validation_accuracy"]], "*", color="gold", markersize=13,
            markeredgecolor="black", zorder=5,
            label=f"best by validation (step {best['step']:,}, {best['seconds']:,.0f} s): "
                  f"validation {_pct(best['validation_accuracy'])}, test "
                  f"{_pct(best['test_accuracy'])}" if label else None)


def _zoom(ax, vline: float | None = None) -> None:
    """An inset of ``ax`` over the last 80% of its x range with the y range fitted, drawn when
    the lines spend that part within a quarter of their whole range (a climb that levelled off:
    its last points apart are otherwise a few pixels)."""
    lines = [line for line in ax.get_lines() if line.get_transform() == ax.transData]
    xs = [np.asarray(line.get_xdata(), dtype=np.float64) for line in lines]
    ys = [np.asarray(line.get_ydata(), dtype=np.float64) for line in lines]
    curves = [(x, y) for x, y in zip(xs, ys) if len(x) > 1]        # not the stars
    if not curves:
        return
    low, high = min(x.min() for x, _ in curves), max(x.max() for x, _ in curves)
    start = low + 0.2 * (high - low)
    late = np.concatenate([y[x >= start] for x, y in curves])
    whole = np.concatenate([y for _, y in curves])
    if high == low or np.ptp(whole) == 0 or np.ptp(late) > 0.25 * np.ptp(whole):
        return
    inset = ax.inset_axes([0.4, 0.1, 0.57, 0.5])
    for line, x, y in zip(lines, xs, ys):
        inset.plot(x, y, color=line.get_color(), linestyle=line.get_linestyle(),
                   linewidth=line.get_linewidth(), marker=line.get_marker(),
                   markersize=line.get_markersize(), markeredgecolor=line.get_markeredgecolor())
    if vline is not None:
        inset.axvline(vline, color="black", linestyle=":", linewidth=1)
    pad = 0.08 * max(np.ptp(late), 0.05)
    inset.set_xlim(start, high + 0.02 * (high - low))
    inset.set_ylim(late.min() - pad, late.max() + pad)
    inset.tick_params(labelsize=7)
    inset.grid(alpha=0.3)
    ax.indicate_inset_zoom(inset, edgecolor="0.4")


def _loss_tick(y: float, _) -> str:
    """A log axis's tick as 0.05 (not 5 x 10^-2), labelled only at 1, 2, 3 and 5 times a power
    of ten (all nine would crowd)."""
    mantissa = y / 10 ** np.floor(np.log10(y))
    return f"{y:g}" if round(mantissa, 6) in (1, 2, 3, 5) else ""


def draw_psiren(s: dict, title: str):
    """The p-SIREN picture of ``runlogs.psiren_series``."""
    fig, axes = plt.subplots(3, 1, figsize=(8.5, 8.5), sharex=True,
                             gridspec_kw={"height_ratios": [2, 2, 1.3]})
    for ax in axes:
        for i, step in enumerate(STEPS):
            a, b = s["steps"][step]["start"], s["steps"][step]["end"]
            if b > a:
                ax.axvspan(a, b, color=STEP_COLOURS[step], alpha=0.13, linewidth=0)
                if ax is axes[0]:
                    ax.text((a + b) / 2, 1.01, f"step {i + 1}: {step}", ha="center",
                            va="bottom", fontsize=8, transform=ax.get_xaxis_transform())
        ax.grid(alpha=0.3)
    axes[0].plot(s["epoch"], s["loss"], "o-", color="black", markersize=3)
    if (s["loss"] > 0).all() and s["loss"].max() > 10 * s["loss"].min():   # a decade or more
        axes[0].set_yscale("log")
        for set_formatter in (axes[0].yaxis.set_major_formatter,
                              axes[0].yaxis.set_minor_formatter):
            set_formatter(FuncFormatter(_loss_tick))
    axes[0].set_ylabel("training loss (epoch mean)")
    axes[1].plot(s["epoch"], 100 * s["validation_accuracy"], "o-", color=plots.SPLIT_COLOURS[
        "validation"], markersize=3, label="validation, each epoch")
    done = [d for d in s["steps"].values() if is_number(d.get("test_accuracy"))]
    axes[1].plot([d["end"] for d in done], [100 * d["test_accuracy"] for d in done], "s",
                 color=plots.SPLIT_COLOURS["test"], label="test, at each step's end")
    axes[1].set_ylabel("accuracy (%)")
    axes[1].legend(fontsize=8, loc="best")
    sp = s["sparsity"]
    axes[2].plot(sp["epoch"], sp["percent"], "-", color="tab:orange",
                 label="step 2's schedule, from the config")
    ends = [d for d in s["steps"].values() if "sparsity" in d]
    axes[2].plot([d["end"] for d in ends], [d["sparsity"] for d in ends], "o", color="black",
                 markersize=4, label="zeros recorded at each step's end")
    axes[2].set_ylim(-3, 103)
    axes[2].set_ylabel("sparsity (% zeros)")
    axes[2].legend(fontsize=8, loc="center right")
    epochs = s["meta"].get("config", {}).get("epochs", {})
    axes[2].set_xlabel("epoch of the run (n1..n4 = "
                       f"{'/'.join(str(epochs.get(k, '?')) for k in STEPS)})")
    axes[2].xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def draw_search(s: dict, title: str):
    """The SENSE picture of ``runlogs.search_series``: accuracy against steps and seconds, moves
    accepted per layer, acceptance rate."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    (by_step, by_time), (moves, rate) = axes
    best = s["best"]
    _accuracy_lines(by_step, s["step"], s)
    _mark_best(by_step, best["step"], best, label=False)
    _accuracy_lines(by_time, s["seconds"], s)
    _mark_best(by_time, best["seconds"], best, label=True)
    if s["backprop"]:
        b = s["backprop"]
        by_time.plot([r["seconds"] for r in b], [100 * r["validation_accuracy"] for r in b], ":",
                     color="violet", label="backprop, validation")
        by_time.plot([r["seconds"] for r in b], [100 * r["test_accuracy"] for r in b], "-",
                     color="darkviolet", label="backprop, test (backprop.jsonl)")
    thinned = f" (a record every {s['every']:,} steps)" if s["every"] > 1 else ""
    by_step.set_xlabel("SENSE step (one neighbourhood each)" + thinned)
    by_time.set_xlabel("seconds of search")
    for ax in (by_step, by_time):
        ax.set_ylabel("accuracy (%)")
    by_time.legend(fontsize=7, loc="best")
    _zoom(by_step, best["step"])
    for layer, counts in s["accepted_by_layer"].items():
        moves.plot(s["step"], counts, color=plots.LAYER_COLOURS.get(layer), label=layer,
                   drawstyle="steps-post")
    exact = s["summary"].get("accepted")
    if s["every"] > 1:
        moves.plot(s["step"], sum(s["accepted_by_layer"].values()), "--", color="black",
                   linewidth=1, label="all layers", drawstyle="steps-post")
        if is_number(exact):
            moves.plot([s["step"][-1]], [exact], "x", color="black", markersize=9,
                       label=f"all layers, counted by the search (summary.json): {exact:,}")
    moves.set_xlabel("SENSE step")
    moves.set_ylabel("moves accepted, cumulative" + (" (estimated)" if s["every"] > 1 else ""))
    moves.set_title("moves accepted per layer" + (
        f" (estimated: the log keeps 1 step in {s['every']:,})" if s["every"] > 1 else ""),
        fontsize=9)
    if s["accepted_by_layer"]:
        moves.legend(fontsize=8, loc="upper left")
    rate.plot(s["step"][1:], 100 * s["rate"][1:], color="black", linewidth=1)
    rate.set_ylim(-3, 103)
    rate.set_xlabel("SENSE step")
    rate.set_ylabel("steps with a move accepted (%)")
    rate.set_title(f"acceptance rate over the last {s['window']:,} steps" + (
        " (estimated, as left)" if s["every"] > 1 else ""), fontsize=9)
    for ax in axes.ravel():
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def draw_chains(members: dict, title: str):
    """One line per member of a family: validation against seconds, test against steps."""
    fig, (by_time, by_step) = plt.subplots(1, 2, figsize=(12, 4.8))
    colours = plt.get_cmap("tab10")
    for i, (name, s) in enumerate(members.items()):
        colour, best = colours(i % 10), s["best"]
        seed = s["config"].get("seed")
        by_time.plot(s["seconds"], 100 * s["validation_accuracy"], color=colour, linewidth=1,
                     label=f"{name}" + (f" (seed {seed})" if seed is not None else "") +
                     f": best validation {_pct(best['validation_accuracy'])}, test "
                     f"{_pct(best['test_accuracy'])}")
        by_time.plot([best["seconds"]], [100 * best["validation_accuracy"]], "*", color=colour,
                     markeredgecolor="black", markersize=10)
        by_step.plot(s["step"], 100 * s["test_accuracy"], color=colour, linewidth=1)
        by_step.plot([best["step"]], [100 * best["test_accuracy"]], "*", color=colour,
                     markeredgecolor="black", markersize=10)
    by_time.set_xlabel("seconds of search")
    by_time.set_ylabel("validation accuracy (%)")
    by_time.set_title("each member; a star: its best network by validation", fontsize=9)
    by_step.set_xlabel("SENSE step")
    by_step.set_ylabel("test accuracy (%)")
    by_step.set_title("test accuracy (only reported, never selected on)", fontsize=9)
    for ax in (by_time, by_step):
        ax.grid(alpha=0.3)
        _zoom(ax)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.legend(*by_time.get_legend_handles_labels(), fontsize=8, ncol=2, loc="upper center",
               bbox_to_anchor=(0.5, 0.0))          # below the panels: saved with the figure
    return fig


def draw_backprop(records: list[dict], title: str):
    """A backprop line: validation and test accuracy against batches and seconds."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, key in zip(axes, ("batches", "seconds")):
        x = [r[key] for r in records]
        for split in ("validation", "test"):
            ax.plot(x, [100 * r[f"{split}_accuracy"] for r in records], ".-",
                    color=plots.SPLIT_COLOURS[split], label=split)
        ax.set_xlabel("SGD batches" if key == "batches" else "seconds of training")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# -- titles: what the run's files say ----------------------------------------------------------

def _name(folder: pathlib.Path) -> str:
    """The run folder and its parent (e.g. ``ens-mnist80/chains``), to tell runs apart."""
    return "/".join(folder.resolve().parts[-2:])


def _psiren_title(folder: pathlib.Path, meta: dict) -> str:
    config = meta.get("config", {})
    every = config.get("prune_every", ADDED_OPTIONS["prune_every"])
    sparsity = meta.get("requested_sparsity", config.get("sparsity"))
    head = [f"{meta.get('dataset', '?')}", (f"{sparsity:g}" if is_number(sparsity) else "?") +
            f"% sparsity ({config.get('pruning', 'global')} pruning, mask moved every {every})",
            f"seed {meta.get('seed', '?')}"] + ([f"{meta['engine']} engine"]
                                                if "engine" in meta else [])
    accuracy = meta.get("accuracy")
    tail = f"binary network: validation {_pct(accuracy['validation'])}, test " \
        f"{_pct(accuracy['test'])}" if isinstance(accuracy, dict) and all(
            is_number(accuracy.get(k)) for k in ("validation", "test")) else ""
    if is_number(meta.get("wall_seconds")):
        tail += f"; {meta['wall_seconds']:,.0f} s"
    return f"{_name(folder)}: p-SIREN (Algorithm 1), " + ", ".join(head) + "\n" + tail


def _search_setting(s: dict) -> str:
    c = {**runs.LEGACY_SETTINGS, **s["config"]}
    images = f"{c['train_images']:,}" if c.get("train_images") else "all"
    own = ", ".join(f"{layer} {f'{n:,}' if n else 'whole set'}"
                    for layer, n in (c.get("screen_by_layer") or {}).items())
    screen = f"screened on {c['screen_images']:,} images{f' ({own})' if own else ''}, " \
        f"{c.get('confirm') or '?'} confirmed" if c.get("screen_images") else "unscreened"
    odds = ", ".join(f"{layer} {w:g}" for layer, w in (c.get("layer_weights") or {}).items())
    anneal = f", annealing T0 {c['anneal_temperature']:g}" if c.get("anneal_temperature") else ""
    drawn = [f"shifted up to {c['shift_pixels']} pixels"] if c.get("shift_pixels") else []
    drawn += ["half mirrored"] if c.get("mirror") else []
    if c["subsample"] < 1:
        images = f"a random {100 * c['subsample']:g}% of {images}"
    shift = f" {' and '.join(drawn)}" if drawn else ""
    shift += f" (redrawn every {c['redraw_steps']:,} steps)" if drawn or c["subsample"] < 1 else ""
    return f"K = {c.get('neighbours', '?')} neighbours a step, {c.get('fitness', '?')} fitness " \
        f"on {images} training images{shift}, {screen}{f', odds {odds}' if odds else ''}{anneal}"


def _search_title(folder: pathlib.Path, s: dict) -> str:
    ckpt, summary, config = s["checkpoint"], s["summary"], s["config"]
    engine = summary.get("engine") or config.get("engine") or runs.LEGACY_SETTINGS["engine"]
    head = [ckpt.get("dataset", "?")] + (
        [f"{ckpt['actual_sparsity']:.4g}% zeros"] if is_number(ckpt.get("actual_sparsity")) else []
    ) + [f"seed {config.get('seed', '?')}", f"{engine} engine"]
    if all(is_number(summary.get(k)) for k in ("steps", "accepted", "seconds")):
        done = f"{summary.get('steps', 0):,} steps, {summary.get('accepted', 0):,} moves " \
               f"accepted in {summary.get('seconds', 0):,.0f} s"
    else:
        done = f"{int(s['step'][-1]):,} steps recorded (no summary.json: still running, or " \
               f"stopped)"
    return f"{_name(folder)}: SENSE (Algorithm 2), {', '.join(head)}\n{_search_setting(s)}\n" \
           f"{done}"


def _chains_title(folder: pathlib.Path, c: dict) -> str:
    family, members = c["family"], c["members"]
    first = next(iter(members.values()))
    seeds = [m["config"].get("seed") for m in members.values()]
    start = family.get("start", {})
    origin = f"from checkpoint {pathlib.Path(start['checkpoint']).name}" if start.get(
        "checkpoint") else f"from a random {start['sparsity']:g}% network" if is_number(
        start.get("sparsity")) else ""
    best = max(members.items(), key=lambda m: m[1]["best"]["validation_accuracy"])
    run_of_seeds = all(isinstance(x, int) for x in seeds) and len(seeds) > 2 and \
        seeds == list(range(seeds[0], seeds[0] + len(seeds)))
    seeds = f"{seeds[0]}-{seeds[-1]}" if run_of_seeds else ", ".join(str(x) for x in seeds)
    return f"{_name(folder)}: SENSE chains of one family (search --chains), " \
        f"{family.get('dataset') or first['checkpoint'].get('dataset', '?')}, " \
        f"{len(members)} members (seeds {seeds}) {origin}\n" \
        f"{_search_setting(first)}\nbest member by validation: {best[0]}, test " \
        f"{_pct(best[1]['best']['test_accuracy'])}"


def _backprop_title(folder: pathlib.Path, b: dict) -> str:
    summary, last = b["summary"], b["records"][-1]
    lr = f", lr {summary['lr']:g}" if is_number(summary.get("lr")) else ""
    seed = f", seed {summary['config']['seed']}" if isinstance(summary.get("config"), dict) \
        and "seed" in summary["config"] else ""
    return f"{_name(folder)}: binary backprop from a SENSE start (Algorithm 1, step 4, mask " \
        f"fixed){lr}{seed}\n{last['batches']:,} batches in {last['seconds']:,.0f} s: validation " \
        f"{_pct(last['validation_accuracy'])}, test {_pct(last['test_accuracy'])}"


def _dagger_title(folder: pathlib.Path, s: dict) -> str:
    settings, n = s["settings"], len(s["round"])
    trainer = {"psiren": "p-SIREN (Algorithm 1) from scratch each round",
               "sense": "SENSE (Algorithm 2) continued each round"}.get(
        settings.get("trainer"), f"trainer {settings.get('trainer', '?')}")
    # Which network a SENSE round hands on (dagger.py's sense_keep; absent: the best).
    keep = ", each round's last network handed on" if settings.get("trainer") == "sense" and \
        settings.get("sense_keep") == "last" else ""
    beta0, decay = settings.get("beta0"), settings.get("beta_decay")
    beta = "beta ?" if not (is_number(beta0) and is_number(decay)) else \
        "$\\beta = 0$ (the network drives)" if beta0 == 0 else \
        f"$\\beta_r = {beta0:g} \\times {decay:g}^r$ (chance the expert's action is taken)"
    cut = settings.get("max_steps")
    cut = f", episodes cut at {cut} steps" if is_number(cut) and cut < MAX_STEPS else ""
    episodes = settings.get("episodes", "?")
    return f"{_name(folder)}: DAgger (Ross et al. 2011) on CarRacing-v3, {trainer}\n" \
        f"seed {settings.get('seed', '?')}, {episodes} episode{'' if episodes == 1 else 's'} a " \
        f"round, {beta}, expert {settings.get('expert_name', '?')}{cut}{keep}\n{n} of " \
        f"{settings.get('rounds', '?')} rounds finished; last network: validation " \
        f"{_pct(s['validation_accuracy'][-1])}, test {_pct(s['test_accuracy'][-1])}"


# -- the picture ---------------------------------------------------------------------------------

def plot_run(folder, out=None, force: bool = False, expert=None) -> pathlib.Path:
    """Draw the run in ``folder`` (``runlogs.run_kind``) into one PNG, ``out`` (default
    ``folder/plot.png``), written atomically; an existing file is replaced only with ``force``.
    ``expert``: for a DAgger run, a ``car expert --json`` file whose mean return is drawn as the
    expert's line (instead of the recording's). Returns the PNG's path."""
    folder = pathlib.Path(folder)
    kind = runlogs.run_kind(folder)
    if expert is not None and kind != "dagger":
        raise MinisenseError(f"--expert draws the expert's line of a DAgger run; {folder} is a "
                             f"{kind} folder, not one (no dagger.json): drop --expert")
    out = pathlib.Path(out) if out is not None else folder / PLOT_FILE
    plots.check_png(out, "--out")
    files.check_outputs({"--out": out}, () if expert is None else (expert,), force)
    if kind == "dagger":
        s = runlogs.dagger_series(folder)
        line = carplots.expert_line(expert) if expert is not None else None
        fig = draw_dagger(s, _dagger_title(folder, s), line)
    elif kind == "psiren":
        s = runlogs.psiren_series(folder)
        fig = draw_psiren(s, _psiren_title(folder, s["meta"]))
    elif kind == "search":
        s = runlogs.search_series(folder)
        fig = draw_search(s, _search_title(folder, s))
    elif kind == "chains":
        c = runlogs.chains_series(folder)
        fig = draw_chains(c["members"], _chains_title(folder, c))
    else:
        b = runlogs.backprop_series(folder)
        fig = draw_backprop(b["records"], _backprop_title(folder, b))
    return plots.save_png(fig, out)
