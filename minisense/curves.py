"""Runs side by side against seconds (``minisense plot RUN RUN ... --out F.png``): SENSE
searches (Algorithm 2) and p-SIREN trainings (Algorithm 1) on one time axis, with the plotted
numbers written as JSON beside the PNG. Nothing here computes a result: every number comes from
the run folders (``minisense.runlogs``).

A search is drawn as the validation accuracy of its best network so far (the network it would
return if stopped then, Section 3.3's selection on validation); a p-SIREN run as its validation
accuracy at the end of each epoch, seconds summed over Algorithm 1's steps (a step reused from
another run counts its own recorded seconds), its ternary network only after step 4. Runs of the
same setting share a colour.
"""

from __future__ import annotations

import pathlib
import textwrap

import matplotlib

matplotlib.use("Agg")          # before pyplot: files only, works without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from minisense import files, plots, runlogs  # noqa: E402
from minisense.errors import MinisenseError  # noqa: E402
from minisense.runplots import _name, _pct, _search_setting  # noqa: E402

__all__ = ["compare_runs", "psiren_curve", "search_curve"]

LINE_STYLES = ("-", "--", ":", "-.")


def search_curve(folder) -> dict:
    """A search's "seconds" and best-so-far "validation_accuracy" (lists), its "setting" (the
    SENSE settings in words), "seed", "steps", and its "best" (step, seconds, validation and test
    accuracy of the network it returns)."""
    s = runlogs.search_series(folder)
    best_so_far = np.maximum.accumulate(s["validation_accuracy"])
    return {"kind": "search", "setting": "SENSE: " + _search_setting(s),
            "dataset": s["checkpoint"].get("dataset"), "seed": s["config"].get("seed"),
            "steps": int(s["step"][-1]),
            "seconds": s["seconds"].tolist(), "validation_accuracy": best_so_far.tolist(),
            "best": {k: float(v) for k, v in s["best"].items()}}


def psiren_curve(folder) -> dict:
    """A p-SIREN run's "seconds" (end of each epoch, summed over its steps) and
    "validation_accuracy" (lists), "step" (Algorithm 1's step of each epoch), "setting", "seed",
    and "best": the ternary network's seconds, validation and test accuracy."""
    s = runlogs.psiren_series(folder)
    meta = s["meta"]
    history = runlogs.read_json(pathlib.Path(folder) / "metrics.json")["history"]
    seconds, t = [], 0.0
    for step in dict.fromkeys(s["step"]):
        epochs = [r for r in history if r["step"] == step and not r.get("done")]
        if not all(runlogs.is_number(r.get("seconds")) for r in epochs):
            raise MinisenseError(f"{folder}/metrics.json: an epoch of step {step} lacks its "
                                 "seconds; this run cannot be placed on a time axis")
        seconds += list(t + np.cumsum([r["seconds"] for r in epochs]))
        done = [r for r in history if r["step"] == step and r.get("done")]
        t = t + done[0]["seconds"] if done and runlogs.is_number(done[0].get("seconds")) \
            else seconds[-1]
    accuracy = meta.get("accuracy") or {}
    sparsity = meta.get("requested_sparsity", meta.get("config", {}).get("sparsity"))
    return {"kind": "psiren", "setting": f"p-SIREN {sparsity:g}% (backprop)",
            "dataset": meta.get("dataset"), "seed": meta.get("seed"),
            "seconds": [float(x) for x in seconds],
            "validation_accuracy": s["validation_accuracy"].tolist(), "step": s["step"],
            "best": {"seconds": float(t), "validation_accuracy": accuracy.get("validation"),
                     "test_accuracy": accuracy.get("test")}}


# Accuracies are counts over a split, and a level comes from a percent (98.4 / 100 is
# 0.9840000000000001): an accuracy this close below a level reaches it.
REACH_TOLERANCE = 1e-9


def first_reach(curve: dict, level: float) -> float | None:
    """The seconds at which ``curve`` first reaches validation ``level`` (a fraction), or None.
    A p-SIREN run counts only from its ternary network (the end of step 4)."""
    level = level - REACH_TOLERANCE
    if curve["kind"] == "psiren":
        b = curve["best"]
        ok = runlogs.is_number(b["validation_accuracy"]) and b["validation_accuracy"] >= level
        return b["seconds"] if ok else None
    hits = np.flatnonzero(np.asarray(curve["validation_accuracy"]) >= level)
    return float(curve["seconds"][hits[0]]) if hits.size else None


def draw(curves: dict, reach: list[float], title: str):
    """One axis: validation accuracy against seconds, a line per run, a colour per setting."""
    fig, ax = plt.subplots(figsize=(10, 7.5))
    settings = list(dict.fromkeys(c["setting"] for c in curves.values()))
    colours = {s: f"C{i % 10}" for i, s in enumerate(settings)}
    seen: dict[str, int] = {}
    for name, c in curves.items():
        k = seen[c["setting"]] = seen.get(c["setting"], -1) + 1
        style = LINE_STYLES[k % len(LINE_STYLES)]
        x, y = np.asarray(c["seconds"]), 100 * np.asarray(c["validation_accuracy"])
        label = f"{name} (seed {c['seed']}): test {_pct(c['best']['test_accuracy'])}" \
            if runlogs.is_number(c["best"].get("test_accuracy")) else name
        if c["kind"] == "psiren":
            ax.plot(x, y, "o" + style, color=colours[c["setting"]], markersize=3, label=label)
            ax.plot([x[-1]], [y[-1]], "*", color=colours[c["setting"]], markersize=12)
        else:
            ax.plot(x, y, style, color=colours[c["setting"]], linewidth=1.2, label=label,
                    drawstyle="steps-post")
    for level in reach:
        ax.axhline(100 * level, color="0.4", linewidth=0.8, linestyle=":")
    top = max(max(c["validation_accuracy"]) for c in curves.values())
    ax.set_ylim(max(0.0, 100 * top - 15), min(100.0, 100 * top + 1.5))
    ax.set_xscale("log")            # p-SIREN's minutes beside SENSE's hour
    ax.set_xlim(left=min(10.0, min(c["seconds"][-1] for c in curves.values()) / 10))
    ax.set_xlabel("seconds, log scale (as each run recorded them; * p-SIREN's ternary network)")
    ax.set_ylabel("validation accuracy (%) of the network a run would return")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3, which="both")
    handles = [plt.Line2D([], [], color=colours[s], label=textwrap.fill(s, 150))
               for s in settings]
    fig.legend(handles=handles, fontsize=7, loc="lower left", frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04 + 0.035 * len(settings), 1, 1))
    return fig


def compare_runs(folders, out, reach=(), force: bool = False) -> tuple[pathlib.Path, dict]:
    """Draw the runs in ``folders`` (searches and p-SIREN trainings) against seconds into the
    PNG ``out`` and their numbers into ``out`` with the suffix .json (both written atomically,
    existing files replaced only with ``force``). ``reach``: validation levels (fractions) whose
    first-reach seconds each run reports. Returns the PNG's path and the JSON's content."""
    out = pathlib.Path(out)
    plots.check_png(out, "--out")
    table = out.with_suffix(".json")
    files.check_outputs({"--out": out, "--out (its .json)": table}, (), force)
    curves = {}
    for folder in map(pathlib.Path, folders):
        kind = runlogs.run_kind(folder)
        if kind not in ("search", "psiren"):
            raise MinisenseError(f"{folder} is a {kind} run; runs side by side are searches "
                                 "and p-SIREN trainings: give their folders")
        curves[_name(folder)] = search_curve(folder) if kind == "search" \
            else psiren_curve(folder)
    for c in curves.values():
        c["first_reaches"] = {f"{100 * level:g}": first_reach(c, level) for level in reach}
    datasets = ", ".join(sorted({str(c["dataset"]) for c in curves.values()}))
    fig = draw(curves, list(reach), f"{datasets}: validation accuracy against seconds, "
               f"{len(curves)} runs")
    plots.save_png(fig, out)
    result = {"runs": curves, "reach": [100 * level for level in reach]}
    files.atomic_write_json(table, result)
    return out, result
