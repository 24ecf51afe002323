"""Pictures of the car-racing task: a DAgger run round by round, and two drivers track by track.

* A DAgger run (``minisense plot RUN`` on a ``car dagger`` folder, drawn from
  ``runlogs.dagger_series``): the mean driving return of each round with its standard error and
  each episode, against the network that drove (pi_0 the start, pi_{r+1} trained after round r,
  as in ``minisense.dagger``), with the expert's mean return as a horizontal line; the frames
  each round added and the aggregate's training frames; validation and test frame accuracy.
* Two drivers on the same tracks (``car compare A.json B.json --plot OUT.png``, drawn from
  ``car.compare``): one point per track, B's return across, A's up, the diagonal y = x (a point
  above it: A did better there) and the 900 at which Gymnasium counts CarRacing solved.

Nothing here computes a result: the numbers are those the run or the comparison recorded.
"""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")          # before pyplot: files only, works without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from minisense import plots, runlogs  # noqa: E402
from minisense.car import MAX_STEPS, SOLVED_RETURN  # noqa: E402
from minisense.errors import MinisenseError  # noqa: E402
from minisense.runlogs import is_number  # noqa: E402

__all__ = ["draw_dagger", "draw_paired", "expert_line", "plot_paired"]

MAX_SEED_LABELS = 15           # tracks below 900 named by their seed only when this few


def _seeds(seeds: list[int]) -> str:
    return f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])


# -- DAgger, round by round ------------------------------------------------------------------------

def expert_line(path) -> dict:
    """The expert's 3-class mean return and its standard error from a ``car expert --json``
    file, in the form of ``runlogs.dagger_series``'s "expert"; a one-line error for another
    file."""
    path = pathlib.Path(path)
    result = runlogs.read_json(path)
    three = result.get("three_class")
    seeds = result.get("seeds")
    if not (isinstance(three, dict) and is_number(three.get("mean_return"))
            and is_number(three.get("sem_return")) and isinstance(seeds, list) and seeds):
        raise MinisenseError(f"--expert {path} holds no 3-class mean return of the expert; give "
                             "the --json of car expert")
    return {"mean_return": float(three["mean_return"]), "sem_return": float(three["sem_return"]),
            "expert_name": result.get("expert_name"), "episodes": len(seeds),
            "seeds": [seeds[0], seeds[-1]], "source": pathlib.Path(path).name}


def _network_tick(x: float, _) -> str:
    return "$\\pi_0$\nstart" if x == 0 else f"$\\pi_{{{x:.0f}}}$"


def draw_dagger(s: dict, title: str, expert: dict | None = None):
    """The DAgger picture of ``runlogs.dagger_series``: returns, frames and accuracies against
    the network pi_i (x = i). ``expert``: the line to draw (default: the series' own)."""
    expert = expert if expert is not None else s["expert"]
    n = len(s["round"])
    fig, (returns, frames, accuracy) = plt.subplots(3, 1, figsize=(8.5, 9.5), sharex=True,
                                                    gridspec_kw={"height_ratios": [2, 1.2, 1.6]})
    mixed = bool((s["beta"] > 0).any())
    episodes = s["settings"].get("episodes", "?")
    labelled = False
    for r, values in enumerate(s["episode_returns"]):
        if values is not None:            # beside the error bar, which may end on them
            returns.plot([r + 0.08] * len(values), values, ".", color="tab:orange",
                         markersize=5, label=None if labelled else "each episode")
            labelled = True
    returns.errorbar(s["round"], s["mean_return"], yerr=s["sem_return"], fmt="o-",
                     color="black", capsize=4, markersize=5,
                     label=f"round i: $\\pi_i$ drives {episodes} "
                           f"episode{'' if episodes == 1 else 's'}, mean ± standard error" +
                           (" (mixed with the expert at $\\beta_i$)" if mixed else ""))
    if expert is not None:
        name = expert.get("expert_name") or "?"
        where = f"{expert['episodes']} tracks, seeds {_seeds(expert['seeds'])}"
        if expert["sem_return"] is not None:
            returns.axhspan(expert["mean_return"] - expert["sem_return"],
                            expert["mean_return"] + expert["sem_return"], color="tab:green",
                            alpha=0.15, linewidth=0)
        returns.axhline(expert["mean_return"], color="tab:green", linestyle="--",
                        label=f"expert {name}, 3-class, {where} ({expert['source']}): mean "
                              f"{expert['mean_return']:.1f}" +
                              (f" ± {expert['sem_return']:.1f}" if expert["sem_return"]
                               is not None else ""))
    if s["settings"].get("max_steps", MAX_STEPS) == MAX_STEPS:   # cut episodes never reach it
        returns.axhline(SOLVED_RETURN, color="0.4", linestyle=":", linewidth=1,
                        label=f"{SOLVED_RETURN}: CarRacing counted solved")
    returns.set_ylabel("return (CarRacing-v3)")
    returns.legend(fontsize=7, loc="best")
    x = np.arange(n + 1)
    trained_on = np.concatenate([[s["start_train_frames"]], s["train_frames"]])
    frames.plot(x, trained_on, "o-", color="black", markersize=4,
                label="training frames of the aggregate when $\\pi_i$ was made ($\\pi_0$: the "
                      "recording's)")
    frames.bar(s["round"], s["frames_added"], width=0.5, color="tab:orange", alpha=0.7,
               label="frames round i added ($\\pi_i$ driving, the expert labelling)")
    frames.set_ylabel("frames")
    frames.legend(fontsize=7, loc="best")
    for split in ("train", "validation", "test"):
        y = 100 * s[f"{split}_accuracy"]
        start = [] if s["start"] is None else [100 * s["start"][f"{split}_accuracy"]]
        xs = x if start else x[1:]
        accuracy.plot(xs, np.concatenate([start, y]), "o-", color=plots.SPLIT_COLOURS[split],
                      markersize=4, linewidth=1,
                      label="train (the aggregate)" if split == "train" else split)
    accuracy.set_ylabel("frame accuracy of $\\pi_i$ (%)")
    accuracy.legend(fontsize=7, loc="best")
    accuracy.set_xlabel("network $\\pi_i$: $\\pi_0$ the start, $\\pi_{r+1}$ trained at the end "
                        "of round r (round i drives $\\pi_i$)")
    accuracy.xaxis.set_major_locator(MaxNLocator(integer=True))
    accuracy.xaxis.set_major_formatter(FuncFormatter(_network_tick))
    accuracy.set_xlim(-0.5, n + 0.5)
    for ax in (returns, frames, accuracy):
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# -- two drivers, track by track -------------------------------------------------------------------

def draw_paired(r: dict):
    """One point per track of ``car.compare``'s result ``r``: B's return across, A's up."""
    a, b = np.asarray(r["returns_a"]), np.asarray(r["returns_b"])
    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    low = min(a.min(), b.min(), SOLVED_RETURN)
    high = max(a.max(), b.max(), SOLVED_RETURN)
    pad = 0.05 * max(high - low, 1.0)
    limits = (low - pad, high + pad)
    ax.plot(limits, limits, "-", color="0.5", linewidth=1, label="y = x: the same return")
    ax.axvline(SOLVED_RETURN, color="0.4", linestyle="--", linewidth=1)
    ax.axhline(SOLVED_RETURN, color="0.4", linestyle="--", linewidth=1,
               label=f"{SOLVED_RETURN}: CarRacing counted solved")
    for better, colour, label in ((a > b, "tab:green", f"A better ({r['a_better']} tracks)"),
                                  (a < b, "tab:red", f"B better ({r['b_better']} tracks)"),
                                  (a == b, "0.3", "the same")):
        if better.any():
            ax.plot(b[better], a[better], "o", color=colour, markersize=5, alpha=0.8,
                    label=label)
    below = np.flatnonzero(a < SOLVED_RETURN)
    if 0 < len(below) <= MAX_SEED_LABELS:
        for i in below:
            ax.annotate(str(r["seeds"][i]), (b[i], a[i]), textcoords="offset points",
                        xytext=(4, -9), fontsize=7)
    ax.set_xlim(limits)
    ax.set_ylim(limits)
    ax.set_aspect("equal")
    ax.set_xlabel(f"B: {r['b']}, return")
    ax.set_ylabel(f"A: {r['a']}, return")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(f"two drivers on the same {r['episodes']} tracks (seeds {_seeds(r['seeds'])})"
                 f"\nA - B = {r['mean_difference']:+.1f} ± {r['sem_difference']:.1f} (standard "
                 f"error of the paired differences);\nmeans A {r['mean_a']:.1f}, B "
                 f"{r['mean_b']:.1f}" + (f"; A's tracks below {SOLVED_RETURN} marked by seed"
                                         if 0 < len(below) <= MAX_SEED_LABELS else ""),
                 fontsize=9)
    fig.tight_layout()
    return fig


def plot_paired(r: dict, out) -> pathlib.Path:
    """``draw_paired`` of ``r`` into the PNG ``out``, written atomically (the caller checks
    ``out`` first, ``files.check_outputs`` and ``check_png``, before any work)."""
    plots.check_png(out, "--plot")
    return plots.save_png(draw_paired(r), out)
