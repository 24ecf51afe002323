"""The ``minisense`` command line: a thin shell over the library (parse, call, print).

    minisense train   p-SIREN (Algorithm 1, Section 4.1) on a static-task dataset -> a run folder
                      with model.npz + model.json (the checkpoint) and metrics.json
    minisense eval    a checkpoint's validation and test accuracy, sparsity and family per layer
    minisense search  SENSE (Algorithm 2) from a checkpoint or a random network
    minisense bench   speed benchmarks (training, delta evaluation)
    minisense car     the car-racing task: expert returns, recording demonstrations, driving
    minisense reproduce FIGURE   one of the paper's figures: PNG + JSON in <out>/<figure>/
    minisense plot RUN  a picture of a train, search, --chains, --backprop or car dagger folder

Every command is one ``@main.command()`` function that parses its options, calls the library and
prints; whatever it does is callable from Python too. Errors reach the user as ONE line
``Error: ...`` and a non-zero exit code, never a traceback: ``MinisenseGroup`` turns the library's
``MinisenseError`` (exit 1) and click's own usage errors (exit 2) into that line, so a new command
gets this for free by being a ``@main.command()``.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import sys
import tempfile
from dataclasses import fields

import click

import minisense

MAX_THREADS = 4096


def _writable(folder: pathlib.Path) -> bool:
    """Whether a file can be made in ``folder`` (made if missing), as Numba tries its cache."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
        return True
    except OSError:
        return False


def check_environment() -> None:
    """The environment settings read at import, checked before Numba reads them (so: before
    the library is imported). A bad ``NUMBA_NUM_THREADS`` is a one-line error (Numba would stop
    with a traceback on 0 and warn and ignore 'abc'). Where Numba can write its cache neither
    beside the package (a read-only install) nor in the user's cache folder, it would refuse to
    import the kernels: they are cached in a folder of the temporary directory instead."""
    threads = os.environ.get("NUMBA_NUM_THREADS")
    if threads is not None:
        value = threads.strip()
        if not (value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_THREADS):
            sys.exit(f"Error: NUMBA_NUM_THREADS={threads!r} is not a whole number of threads in "
                     f"1..{MAX_THREADS}; set it to e.g. 2, or unset it")
    cache = os.environ.get("NUMBA_CACHE_DIR")
    if cache is not None:
        if not _writable(pathlib.Path(cache)):
            sys.exit(f"Error: NUMBA_CACHE_DIR={cache!r} is not a writable folder; point it at "
                     "one, or unset it")
        return
    user = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path("~/.cache")
                        .expanduser()) / "numba"
    if not _writable(pathlib.Path(minisense.__file__).parent / "fast" / "__pycache__") and \
            not _writable(user):
        fallback = pathlib.Path(tempfile.gettempdir()) / f"minisense-numba-{os.getuid()}"
        if not _writable(fallback):
            sys.exit(f"Error: Numba can write its cache neither beside minisense nor in {user} "
                     f"nor in {fallback}; set NUMBA_CACHE_DIR to a writable folder")
        os.environ["NUMBA_CACHE_DIR"] = str(fallback)


check_environment()

from minisense import (  # noqa: E402  (after the environment check: these import Numba)
    __version__,
    bench,
    car,
    carplots,
    checkpoint,
    curves,
    dagger,
    data,
    ensemble,
    evaluate,
    files,
    plots,
    psiren,
    reproduce,
    runplots,
    runs,
    sense,
    sweep,
)
from minisense import chains as chains_  # noqa: E402
from minisense.data import DATASETS, load_dataset  # noqa: E402
from minisense.errors import MinisenseError  # noqa: E402
from minisense.expert import DEFAULT_EXPERT, EXPERTS, LABELLINGS, expert_config  # noqa: E402
from minisense.network import ENGINES  # noqa: E402
from minisense.psiren import PRUNING, PsirenConfig  # noqa: E402

DEFAULTS = PsirenConfig()
FORCE_HELP = "Replace an existing --json file (never a file it reads, nor a run's)."
# Bounds of whole-number options (beyond them a run would not end or a count would overflow).
SEED = click.IntRange(0, sense.MAX_SEED)        # numpy takes no negative seeds
EPOCHS = click.IntRange(0, 10_000)
JOBS = click.IntRange(1, 1024)                  # processes, chains, workers
COUNT = click.IntRange(0, sense.MAX_COUNT)      # steps, images, batches
POSITIVE = click.IntRange(1, sense.MAX_COUNT)
NEIGHBOURS = click.IntRange(1, sense.MAX_NEIGHBOURS)
MAX_REPEATS = 1000
MAX_EPISODES = 100_000


class Finite(click.FloatRange):
    """A float option in a range that also refuses nan and inf (which pass any range check)."""

    name = "finite float"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if number != number or number in (float("inf"), float("-inf")):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class Numbers(click.ParamType):
    """Finite numbers, comma-separated (``1,2,1``) -> a tuple; ``positive``: each > 0; ``whole``:
    whole numbers 1..``most``."""

    name = "numbers"

    def __init__(self, positive: bool = False, whole: bool = False,
                 most: float = float("inf")):
        self.positive, self.whole, self.most = positive or whole, whole, most

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        kind = int if self.whole else float
        try:
            numbers = tuple(kind(w) for w in str(value).split(","))
        except ValueError:
            self.fail(f"{value!r} is not comma-separated {'whole ' if self.whole else ''}"
                      "numbers, e.g. 1,2,1", param, ctx)
        if not all((w > 0 or not self.positive) and abs(w) < float("inf") and w <= self.most
                   for w in numbers):
            self.fail(f"{value!r}: every number must be "
                      f"{f'in 1..{self.most}' if self.whole else 'finite'}"
                      f"{' and > 0' if self.positive and not self.whole else ''}", param, ctx)
        return numbers


class Sparsity(Finite):
    """p, the percent of weights that are zero (Algorithm 1's p), in the range given. A value
    strictly between 0 and 1 is refused: it is almost surely a fraction meant as a percent
    (0.8 for 80%), and taken as written it would give a nearly dense network."""

    name = "percent"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if 0 < number < 1:
            self.fail(f"{number:g} would be {number:g}% zeros (a nearly dense network); sparsity "
                      f"is a percent: for {100 * number:g}% give {100 * number:g}", param, ctx)
        return number


# -- errors: one line, no traceback ---------------------------------------------------------------

def _one_line(message: str) -> str:
    return " ".join(str(message).split())


class MinisenseGroup(click.Group):
    """A click group whose commands report every bad input as one ``Error: ...`` line.

    * ``MinisenseError`` (the library's bad-input error) -> ``click.ClickException``, exit code 1.
    * click's usage errors (bad option value, unknown option or command) -> the same one line,
      with a pointer to ``--help`` instead of the usage block, exit code 2.
    Other exceptions are bugs and keep their traceback.
    """

    def make_context(self, info_name, args, parent=None, **extra):
        # Parsing the group's own options (e.g. an unknown one before the command name).
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as e:
            raise _usage_error(e) from None

    def invoke(self, ctx):
        # Resolving the command, parsing its options and running it.
        try:
            return super().invoke(ctx)
        except MinisenseError as e:
            raise click.ClickException(_one_line(e)) from None
        except click.UsageError as e:
            raise _usage_error(e) from None


def _usage_error(e: click.UsageError) -> click.ClickException:
    no_args_is_help = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click >= 8.2
    if isinstance(e, no_args_is_help):
        return e  # the help text itself, shown as click shows it
    message = _one_line(e.format_message())
    if e.ctx is not None:
        message += f" (see '{e.ctx.command_path} --help')"
    error = click.ClickException(message)
    error.exit_code = e.exit_code
    return error


@click.group(name="minisense", cls=MinisenseGroup)
@click.version_option(__version__, prog_name="minisense")
def main():
    """Architecture Agnostic Neural Networks: p-SIREN and SENSE for sparse binary networks."""


# -- minisense train ------------------------------------------------------------------------------

def default_out(dataset: str, sparsity: float, seed: int) -> pathlib.Path:
    """The run folder when --out is not given: runs/<dataset>-p<sparsity>-s<seed>."""
    return pathlib.Path("runs") / f"{dataset}-p{sparsity:g}-s{seed}"


def _progressbar(iterable, label="", length=None):
    """A progress bar on stderr over one epoch's batches (the ``progress`` hook of ``psiren``),
    or over episodes (``car``; ``length`` when the iterable has no len)."""
    return click.progressbar(iterable, length=length, label=label, file=sys.stderr,
                             show_pos=True, show_eta=True)


ENGINE_HELP = ("The tier that runs it: fast (the default), or textbook, the plain NumPy "
               "version a student reads (minisense/textbook/), tested equal to it and slower. "
               "Same run folder either way.")


def _with_baseline(accuracy: float, baseline: float) -> str:
    """'97.12% (majority class 11.35%)': an accuracy beside the split's majority-class rate."""
    return f"{100 * accuracy:.2f}% (majority class {100 * baseline:.2f}%)"


@main.command()
@click.option("--dataset", type=click.Choice(DATASETS), default="digits", show_default=True,
              help="Static-task dataset; digits needs no download.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=pathlib.Path),
              help="Folder holding the IDX files (else $MINISENSE_DATA, then the cache).")
@click.option("--sparsity", type=Sparsity(0, 100, max_open=True), default=DEFAULTS.sparsity,
              show_default=True, help="p: percent of weights that are zero, in [0, 100).")
@click.option("--seed", type=SEED, default=DEFAULTS.seed, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=pathlib.Path),
              help="Run folder  [default: runs/<dataset>-p<sparsity>-s<seed>]")
@click.option("--epochs-dense", type=EPOCHS, default=DEFAULTS.epochs["dense"],
              show_default=True, help="n1: epochs of step 1 (dense training).")
@click.option("--epochs-prune", type=EPOCHS, default=DEFAULTS.epochs["prune"],
              show_default=True,
              help="n2: epochs of step 2 (gradual pruning); at least 1 unless --sparsity 0.")
@click.option("--epochs-sparse", type=EPOCHS, default=DEFAULTS.epochs["sparse"],
              show_default=True, help="n3: epochs of step 3 (sparse fine-tuning).")
@click.option("--epochs-binary", type=EPOCHS, default=DEFAULTS.epochs["binary"],
              show_default=True, help="n4: epochs of step 4 (binary fine-tuning).")
@click.option("--batch-size", type=POSITIVE, default=DEFAULTS.batch_size,
              show_default=True)
@click.option("--lr", type=Finite(0, min_open=True),
              help=f"Learning rate of steps 1-3  [default: {DEFAULTS.lr}; "
                   f"{psiren.DATASET_RATES['carracing']['lr']} for carracing]")
@click.option("--lr-binary", type=Finite(0, min_open=True),
              help=f"Learning rate of step 4  [default: {DEFAULTS.lr_binary}; "
                   f"{psiren.DATASET_RATES['carracing']['lr_binary']} for carracing]")
@click.option("--pruning", type=click.Choice(PRUNING), default=DEFAULTS.pruning,
              show_default=True, help="One magnitude ranking over all layers, or per layer.")
@click.option("--prune-every", type=click.Choice(psiren.PRUNE_EVERY),
              default=DEFAULTS.prune_every, show_default=True,
              help="Move step 2's mask along its schedule once per epoch or after every batch.")
@click.option("--gain-grad-scale", type=click.Choice(psiren.GAIN_GRAD_SCALES),
              default=DEFAULTS.gain_grad_scale, show_default=True,
              help="Step 4: scale the learned gains' gradients by LSQ's 1/sqrt(N), or not.")
@click.option("--class-weights", type=Numbers(positive=True),
              help="Weight of each class in the cross-entropy of steps 1-4, comma-separated in "
                   "class order (the car: left,straight+gas,right, e.g. 1,2,1)  [default: all 1]")
@click.option("--engine", type=click.Choice(list(ENGINES)), default="fast", show_default=True,
              help=ENGINE_HELP)
@click.option("--force", is_flag=True, help="Replace a trained run already in --out.")
def train(dataset, data_dir, sparsity, seed, out, epochs_dense, epochs_prune, epochs_sparse,
          epochs_binary, batch_size, lr, lr_binary, pruning, prune_every, gain_grad_scale,
          class_weights, engine, force):
    """Train a sparse binary network with p-SIREN (Algorithm 1) and save it in --out."""
    _refuse_data_dir_for_digits(dataset, data_dir)
    if sparsity == 0:
        _refuse_idle(_given("pruning", "prune_every"), "with --sparsity 0 (nothing is pruned)")
    if epochs_binary == 0:
        _refuse_idle(_given("lr_binary", "gain_grad_scale"), "with --epochs-binary 0 (no step 4)")
    config = psiren.config_for(
        dataset, sparsity=sparsity,
        epochs={"dense": epochs_dense, "prune": epochs_prune, "sparse": epochs_sparse,
                "binary": epochs_binary},
        batch_size=batch_size, lr=lr, lr_binary=lr_binary, pruning=pruning,
        prune_every=prune_every, gain_grad_scale=gain_grad_scale, class_weights=class_weights,
        seed=seed)
    out = out if out is not None else default_out(dataset, sparsity, seed)
    summary = psiren.train(dataset, config, out, data_dir, progress=_progressbar, log=click.echo,
                           command=list(sys.argv), force=force, engine=engine)
    accuracy, baseline = summary["accuracy"], summary["majority_baseline"]
    click.echo(f"binary network: validation "
               f"{_with_baseline(accuracy['validation'], baseline['validation'])}, test "
               f"{_with_baseline(accuracy['test'], baseline['test'])}, sparsity "
               f"{summary['actual_sparsity']:.2f}%, {summary['wall_seconds']:.1f} s")
    click.echo(f"checkpoint: {summary['checkpoint']}")


# -- minisense eval -------------------------------------------------------------------------------

@main.command(name="eval")
@click.argument("checkpoint_path", metavar="CHECKPOINT", type=click.Path(path_type=pathlib.Path))
@click.option("--dataset", type=click.Choice(DATASETS),
              help="Evaluate on this dataset  [default: the one in the checkpoint's metadata]")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=pathlib.Path),
              help="Folder holding the IDX files (else $MINISENSE_DATA, then the cache).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=pathlib.Path),
              help="Also write the results as JSON to this file.")
@click.option("--force", is_flag=True, help=FORCE_HELP)
def eval_command(checkpoint_path, dataset, data_dir, json_path, force):
    """Accuracy, sparsity and family of a checkpoint (a run folder or its model.npz)."""
    files.check_outputs({"--json": json_path}, checkpoint.checkpoint_paths(checkpoint_path),
                        force)
    result = evaluate.evaluate(checkpoint_path, dataset, data_dir)
    click.echo(f"checkpoint {result['checkpoint']}: {result['architecture']} network, dataset "
               f"{result['dataset']} from {result['source']}")
    click.echo(f"validation accuracy {100 * result['validation_accuracy']:.2f}% "
               f"({result['validation_images']} images, majority class "
               f"{100 * result['validation_majority_baseline']:.2f}%), test accuracy "
               f"{100 * result['test_accuracy']:.2f}% ({result['test_images']} images, majority "
               f"class {100 * result['test_majority_baseline']:.2f}%)")
    layers = result["layers"]
    total = sum(layer["weights"] for layer in layers.values())
    zeros = sum(layer["family"]["0"] for layer in layers.values())
    click.echo(f"sparsity {result['sparsity']:.2f}% ({zeros} of {total} weights are zero)")
    click.echo(f"{'layer':<10} {'weights':>8} {'-1':>8} {'0':>8} {'+1':>8} {'sparsity':>9}")
    for layer, row in layers.items():
        f = row["family"]
        click.echo(f"{layer:<10} {row['weights']:>8} {f['-1']:>8} {f['0']:>8} {f['+1']:>8} "
                   f"{row['sparsity']:>8.2f}%")
    if json_path is not None:
        source = pathlib.Path(result["source"])         # the dataset's files: never replaced
        files.check_outputs({"--json": json_path}, [source / (stem + gz) for stem in data.FILES
                                                    for gz in ("", ".gz")], force=True)
        files.atomic_write_json(json_path, result)
        click.echo(f"results: {json_path}")


def _checkpoint_files(paths) -> list[pathlib.Path]:
    """The files a command reads for ``paths``: checkpoints, search, backprop or chains folders."""
    found = ensemble.member_paths(paths) if paths else []
    return [p for path in found for p in checkpoint.checkpoint_paths(path)]


# -- later commands -------------------------------------------------------------------------------
# search, bench, car, reproduce: one ``@main.command()`` function each, below this line, that
# parses its options, calls one library function and prints. Bad input is raised by the library
# as MinisenseError; MinisenseGroup turns it into the one-line "Error: ..." already.


class _StatusLine:
    """A status line on stderr: redrawn in place every second on a terminal; without one (a log
    file), a whole line every ``every`` seconds, so the log reads line by line."""

    def __init__(self, every: float = 30.0):
        self.tty = sys.stderr.isatty()
        self.every = 1.0 if self.tty else every
        self.last = -float("inf")

    def __call__(self, seconds: float, text: str) -> None:
        if seconds - self.last >= self.every:
            self.last = seconds
            click.echo(("\r" + text) if self.tty else text, nl=not self.tty, err=True)

    def end(self) -> None:
        if self.tty:
            click.echo("", err=True)


def _layer_values(pairs, kind, option: str) -> dict:
    """LAYER=VALUE options as {layer: kind(VALUE)}."""
    values = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            values[name] = kind(value)
            if not name or not values[name] >= 0 or values[name] == float("inf"):
                raise ValueError
        except ValueError:
            raise click.BadParameter(f"{pair!r} is not LAYER=VALUE with a finite VALUE >= 0 "
                                     f"({kind.__name__}), e.g. layer1.0=640",
                                     param_hint=option) from None
    return values


def _parallel_options(jobs_help: str):
    """--jobs, --backend and --scheduler: where independent runs go (``minisense.sweep``)."""
    def decorate(command):
        for option in reversed([
                click.option("--jobs", type=JOBS, default=1, show_default=True,
                             help=jobs_help),
                click.option("--backend", type=click.Choice(sweep.BACKENDS), default="joblib",
                             show_default=True,
                             help="joblib: local processes; dask: a Dask cluster."),
                click.option("--scheduler",
                             help="With --backend dask: the scheduler, e.g. tcp://host:8786.")]):
            command = option(command)
        return command
    return decorate


def _sense_default(name: str):
    """``SenseConfig``'s default for a field: the CLI states no defaults of its own."""
    return next(f for f in fields(sense.SenseConfig) if f.name == name).default


@main.command()
@click.option("--checkpoint", "from_checkpoint", type=click.Path(path_type=pathlib.Path),
              help="Start from this p-SIREN checkpoint (Algorithm 2 'with backprop').")
@click.option("--init", type=click.Choice(["random"]),
              help="Start from a random sparse ternary network ('without backprop').")
@click.option("--sparsity", type=Sparsity(0, 100, min_open=True, max_open=True),
              help="With --init random: percent of zeros per layer.")
@click.option("--dataset", type=click.Choice(DATASETS),
              help="[default: the checkpoint's dataset, else digits]")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=pathlib.Path))
@click.option("--schedule", type=click.Choice(sense.SCHEDULES), default=_sense_default("schedule"),
              show_default=True, help="alternate (Fig. 6), fc only (Fig. 7), random (Fig. 8).")
@click.option("--fitness", type=click.Choice(sense.FITNESSES), default=_sense_default("fitness"),
              show_default=True, help="Selection on training images; accuracy is reported.")
@click.option("--neighbours", type=NEIGHBOURS,
              default=_sense_default("neighbours"), show_default=True,
              help="K: first neighbours sampled per step.")
@click.option("--steps-per-layer", type=POSITIVE, default=_sense_default("steps_per_layer"),
              show_default=True, help="E: steps in a layer before the schedule moves on.")
@click.option("--repeats", type=POSITIVE, default=_sense_default("repeats"), show_default=True,
              help="R: rounds of the alternate schedule.")
@click.option("--layer", "layers", multiple=True,
              help="Search these layers (repeatable). [default: every layer but layer1.0, which "
                   "keeps its start: its steps cost 10-30 times more and measured not worth it]")
@click.option("--layer-weight", "layer_weights", multiple=True, metavar="LAYER=W",
              help="Random schedule: a layer's odds W of being chosen, against 1 for the others "
                   "(repeatable; replaces the defaults). [default: the car's fc2=0.25]")
@click.option("--budget-minutes", type=Finite(0, min_open=True),
              default=_sense_default("budget_seconds") / 60, show_default=True)
@click.option("--max-steps", type=COUNT, default=_sense_default("max_steps"),
              help="Stop after this many steps (reproducible, unlike the time budget).")
@click.option("--train-images", type=COUNT,
              default=_sense_default("train_images"), show_default=True,
              help="Fitness on the first N training images (0: the whole training split).")
@click.option("--margin-scale", type=Finite(min=0, min_open=True),
              default=_sense_default("margin_scale"), show_default=True,
              help="Margin fitness: clip each image's margin at this many times the starting "
                   "network's logit standard deviation (larger: images already right keep "
                   "counting as their margin grows).")
@click.option("--anneal", type=Finite(min=0), default=_sense_default("anneal_temperature"),
              show_default=True,
              help="Simulated annealing: the start temperature T0, in images' worth of fitness "
                   "(a move losing that much is taken with odds 1/e; 0: hill climbing).")
@click.option("--anneal-half-life", type=Finite(min=0, min_open=True),
              default=_sense_default("anneal_half_life"), show_default=True,
              help="Steps over which the annealing temperature halves.")
@click.option("--screen-images", type=COUNT,
              default=_sense_default("screen_images"),
              help="Screening: score each step's K neighbours on a slice of S fitness images "
                   "(moving every step), then only the best --confirm on all of them; a move is "
                   "still judged on the whole set. 0: every neighbour on the whole set. "
                   f"[default: {sense.ENGINE_SCREEN_IMAGES['fast']}; the textbook engine: 0]")
@click.option("--confirm", type=NEIGHBOURS, default=_sense_default("confirm"),
              help="M: neighbours confirmed on the whole set per screened step. [default: 5; "
                   "the car: 10]")
@click.option("--screen", "screen_by_layer", multiple=True, metavar="LAYER=S",
              help="A layer's own slice S, overriding --screen-images (repeatable; 0: that "
                   "layer unscreened; replaces the defaults). [default: layer1.0=640, and the "
                   "car's fc1=0 fc2=0]")
@click.option("--confirm-stages", type=click.IntRange(1, sense.MAX_CONFIRM_STAGES),
              default=_sense_default("confirm_stages"), show_default=True,
              help="Confirm on the rest of the set in this many pieces, dropping before each a "
                   "neighbour worse than the current network on the images seen so far.")
@click.option("--shift-pixels", type=click.IntRange(0, sense.MAX_SHIFT),
              default=_sense_default("shift_pixels"), show_default=True,
              help="Score fitness on copies of the training images each moved by up to this many "
                   "pixels, drawn afresh every --redraw-steps steps, so the climb cannot fit the "
                   "images pixel by pixel (0: the images as they are).")
@click.option("--mirror", is_flag=True, default=_sense_default("mirror"),
              help="The car: score fitness on frames of which a random half, drawn afresh every "
                   "--redraw-steps steps, are mirrored left to right with left and right "
                   "swapped in their labels.")
@click.option("--subsample", type=Finite(min=0, max=1, min_open=True),
              default=_sense_default("subsample"), show_default=True,
              help="Score fitness on a random share F of the training images, drawn afresh every "
                   "--redraw-steps steps, as SGD takes minibatches: cheaper steps, and a move must "
                   "pay on images the climb has not fitted (1: all of them).")
@click.option("--class-weights", type=Numbers(whole=True, most=sense.MAX_CLASS_WEIGHT),
              help="Count each fitness image of class c w_c times (whole numbers, comma-separated "
                   "in class order; the car: left,straight+gas,right, e.g. 1,2,1), as p-SIREN's "
                   "--class-weights weight its loss  [default: all 1]")
@click.option("--redraw-steps", type=POSITIVE, default=_sense_default("redraw_steps"),
              help="Steps between fresh draws of the shifted, mirrored or subsampled fitness "
                   "images. [default: 1000]")
@click.option("--seed", type=SEED, default=_sense_default("seed"), show_default=True)
@click.option("--engine", type=click.Choice(list(ENGINES)), default=_sense_default("engine"),
              show_default=True,
              help="fast: delta evaluation in Numba, with screening; textbook: the plain "
                   "Algorithm 2, each neighbour by a whole forward pass (slow; no screening or "
                   "annealing). The same steps and records without screening.")
@click.option("--out", type=click.Path(file_okay=False, path_type=pathlib.Path))
@click.option("--resume", type=click.Path(file_okay=False, path_type=pathlib.Path),
              help="Continue the search in this folder (after a crash or kill).")
@click.option("--backprop", is_flag=True,
              help="Instead of SENSE, the paper's comparison line: binary backprop (Algorithm 1, "
                   "step 4) from the same start, same budget (--max-steps counts batches).")
@click.option("--backprop-lr", type=Finite(min=0, min_open=True), default=0.01,
              show_default=True)
@click.option("--chains", type=JOBS, default=1, show_default=True,
              help="Grow a family: M independent searches from the same start, seeds seed.."
                   "seed+M-1, in OUT/chain-<i>/ and summarised in OUT/family.json. Run the same "
                   "command again to continue unfinished chains.")
@_parallel_options("With --chains: chains run at once on local processes (the cores are "
                   "shared among them).")
def search(from_checkpoint, init, sparsity, dataset, data_dir, layers, layer_weights,
           budget_minutes, screen_by_layer, anneal, out, resume, backprop, backprop_lr, chains,
           jobs, backend, scheduler, **options):
    """SENSE (Algorithm 2): hill-climb the architecture manifold by bit swaps, no backprop."""
    if chains > 1 and (resume is not None or backprop):
        raise click.UsageError("--chains continue by running the same command again; it takes "
                               "neither --resume nor --backprop")
    if resume is not None:
        run = _resume_search(resume, data_dir)
    else:
        _refuse_idle_search_options(backprop, chains, anneal, options)
        _refuse_data_dir_for_digits(dataset or (None if from_checkpoint else "digits"),
                                    data_dir)
        if init == "random" and sparsity is None:
            raise click.UsageError("--init random needs --sparsity")
        weights = options.pop("class_weights")
        config = sense.SenseConfig(
            **options, class_weights=None if weights is None else list(weights),
            layers=list(layers) or None, budget_seconds=60 * budget_minutes,
            anneal_temperature=anneal,
            layer_weights=_layer_values(layer_weights, float, "--layer-weight") or None,
            screen_by_layer=_layer_values(screen_by_layer, int, "--screen") or None)
        if not backprop:
            runs.check_options(config, dataset, from_checkpoint)
        out = out or runs.default_out(dataset, config.seed, backprop)
        if chains > 1:
            return _chains(config, chains, out, dataset, from_checkpoint, sparsity, data_dir,
                           jobs, backend, scheduler)
        if backprop:
            return _backprop_line(config, out, dataset, from_checkpoint, sparsity, data_dir,
                                  backprop_lr)
        run = runs.start(config, out, dataset, from_checkpoint, sparsity, data_dir)
    first, base = run.accuracies(), run.majority_baseline()
    # The sparsity first: a search of another sparsity than meant looks right otherwise.
    click.echo(f"start: {checkpoint.sparsity_percent(run.template):.2f}% zeros, validation "
               f"{_with_baseline(first['validation_accuracy'], base['validation'])}, test "
               f"{_with_baseline(first['test_accuracy'], base['test'])}, fitness on "
               f"{run.n_train} training images ({run.config.fitness}); {run.config.engine} "
               f"engine{_cache_size(run.fit)}; writing to {run.out}")
    line = _StatusLine()

    def status(record):
        line(record["seconds"], f"step {record['step']:>7} {record['layer']:<9} fitness "
             f"{record['fitness']:.4f} train {100 * record['train_accuracy']:.2f}% "
             f"val {100 * record['validation_accuracy']:.2f}% "
             f"{record['evals_per_second']:,.0f} evals/s {record['seconds']:,.0f} s")

    with _stop_on_signals(run, line):
        summary = run.run(on_step=status)
    line.end()
    best = summary["best"]
    click.echo(f"{summary['steps']} steps, {summary['accepted']} moves accepted, "
               f"{summary['evaluations']:,} neighbours in {summary['seconds']:.0f} s "
               f"({summary['evals_per_second']:,.0f} evals/s); best (step {best['step']}, by "
               f"validation): validation "
               f"{_with_baseline(best['validation_accuracy'], base['validation'])}, test "
               f"{_with_baseline(best['test_accuracy'], base['test'])}")
    click.echo(f"summary: {run.out / 'summary.json'}, records: {run.out / runs.LOG_FILE}, "
               f"best network: {run.out / 'best'}")


@contextlib.contextmanager
def _stop_on_signals(run, line):
    """Ctrl-C (SIGINT) or ``kill`` (SIGTERM) during a search: a one-line stop that says the run
    can continue, not click's bare "Aborted!" or a silent death. Nothing needs saving: the state
    is saved after every accepted move (``runs.SearchRun``), and ``--resume`` drops the steps
    logged after it, so a stop anywhere loses only the rejected steps since the last move."""
    def stop(signum, frame):
        raise KeyboardInterrupt(signum)
    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:                  # not the main thread (the API in a thread): leave it
        previous = None
    try:
        yield
    except BaseException as e:
        # The signal may land inside a library's cleanup (numpy's savez closing its zip), whose
        # own error then replaces the KeyboardInterrupt: it is still the stop, found in the chain.
        interrupt = e
        while interrupt is not None and not isinstance(interrupt, KeyboardInterrupt):
            interrupt = interrupt.__context__
        if interrupt is None:
            raise
        line.end()
        signum = interrupt.args[0] if interrupt.args else signal.SIGINT
        where = f"stopped by {signal.Signals(signum).name} at step {run.state['step']}"
        if (run.out / runs.STATE_FILE).is_file():
            message = (f"{where}; every accepted move is saved in {run.out}: continue with "
                       f"'minisense search --resume {run.out}'")
        else:
            message = f"{where}, before its first save; start it again"
        error = click.ClickException(message)
        error.exit_code = 128 + signum
        raise error from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


# Options of SENSE itself: binary backprop (--backprop) uses none of them.
SENSE_ONLY = ("schedule", "fitness", "neighbours", "steps_per_layer", "repeats", "layers",
              "layer_weights", "train_images", "anneal", "anneal_half_life", "screen_images",
              "confirm", "screen_by_layer", "confirm_stages", "shift_pixels", "redraw_steps",
              "mirror", "margin_scale", "subsample", "class_weights")


def _given(*names) -> list[str]:
    """The options among ``names`` (parameter names) given on the command line, as --options."""
    ctx = click.get_current_context()
    flags = {param.name: param.opts[0] for param in ctx.command.params}
    return [flags[name] for name in names
            if ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)]


def _refuse_idle(options: list[str], why: str) -> None:
    """A usage error naming ``options`` that would have no effect (``why``), as click refuses
    conflicting options."""
    if options:
        raise click.UsageError(f"{', '.join(options)} {'has' if len(options) == 1 else 'have'} "
                               f"no effect {why}; drop {'it' if len(options) == 1 else 'them'}")


def _refuse_data_dir_for_digits(dataset: str | None, data_dir) -> None:
    """digits comes from scikit-learn: a --data-dir would be read by nothing."""
    if dataset == "digits" and data_dir is not None:
        _refuse_idle(["--data-dir"], "with --dataset digits (scikit-learn's, no files)")


def _refuse_idle_search_options(backprop: bool, chains: int, anneal: float,
                                options: dict) -> None:
    """``search``'s options that a combination makes idle: refused, never ignored."""
    if backprop:
        _refuse_idle(_given(*SENSE_ONLY), "with --backprop (binary backprop, not SENSE)")
    else:
        _refuse_idle(_given("backprop_lr"), "without --backprop")
    if chains == 1:
        _refuse_idle(_given("jobs", "backend", "scheduler"),
                     "without --chains M (they place the chains' searches)")
    screen_images, engine = options["screen_images"], options["engine"]
    if screen_images == 0 or (screen_images is None and engine == "textbook"):
        _refuse_idle(_given("confirm", "confirm_stages", "screen_by_layer"),
                     "with screening off (--screen-images 0, or the textbook engine)")
    confirm = options["confirm"]
    if confirm is not None and confirm >= options["neighbours"] and _given("confirm"):
        raise click.UsageError(f"--confirm {confirm} is not below --neighbours "
                               f"{options['neighbours']}: every neighbour would be confirmed and "
                               "screening would do nothing; give a smaller --confirm")
    if anneal == 0:
        _refuse_idle(_given("anneal_half_life"), "without --anneal T0 > 0")
    if options["fitness"] == "accuracy":
        _refuse_idle(_given("margin_scale"), "with --fitness accuracy (no margin to clip)")


def _cache_size(evaluator) -> str:
    """', 12 MiB cache per evaluator' for an evaluator that keeps a cache, else ''."""
    size = getattr(evaluator, "cache_bytes", None)
    return "" if size is None else f", {size / 2**20:.0f} MiB cache per evaluator"


def _chains(config, chains, out, dataset, from_checkpoint, sparsity, data_dir, jobs, backend,
            scheduler) -> None:
    """``search --chains M``: a family of M searches from one start."""
    family = chains_.run_chains(config, chains, out, dataset, from_checkpoint, sparsity,
                                data_dir, jobs, backend, scheduler, _progressbar)
    for m in family["members"]:
        click.echo(f"{m['chain']}: seed {m['seed']}, {m['steps']} steps, best (step "
                   f"{m['best']['step']}): validation {100 * m['best']['validation_accuracy']:.2f}%"
                   f", test {100 * m['best']['test_accuracy']:.2f}%")
    best = max(family["members"], key=lambda m: m["best"]["validation_accuracy"])
    click.echo(f"{chains} chains of one family (all keep the start's family); best by "
               f"validation: {best['chain']}, test {100 * best['best']['test_accuracy']:.2f}%")
    click.echo(f"family: {pathlib.Path(out) / chains_.FAMILY_FILE}; an ensemble of it: "
               f"minisense ensemble {out}")


def _resume_search(folder, data_dir) -> sense.Search:
    """``search --resume``: only --max-steps and --budget-minutes may extend the saved run."""
    ctx = click.get_current_context()
    given = [name for name in ctx.params if name not in ("resume", "data_dir")
             and ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT]
    fixed = [f"--{name.replace('_', '-')}" for name in given
             if name not in ("max_steps", "budget_minutes")]
    if fixed:
        raise click.UsageError(f"--resume continues a search with its saved settings; "
                               f"{', '.join(fixed)} cannot change them (--max-steps and "
                               "--budget-minutes can extend it)")
    return runs.resume(folder, data_dir=data_dir,
                        max_steps=ctx.params["max_steps"] if "max_steps" in given else None,
                        budget_seconds=60 * ctx.params["budget_minutes"]
                        if "budget_minutes" in given else None)


def _backprop_line(config, out, dataset, from_checkpoint, sparsity, data_dir, lr) -> None:
    """``search --backprop``: the paper's comparison line from the same start."""
    status = _StatusLine()

    def show(r):
        status(r["seconds"], f"batch {r['batches']:>7} val {100 * r['validation_accuracy']:.2f}% "
               f"test {100 * r['test_accuracy']:.2f}% {r['seconds']:,.0f} s")

    summary = runs.backprop_line(config, out, dataset, from_checkpoint, sparsity, data_dir, lr,
                                  show)
    status.end()
    first, last, best = summary["first"], summary["last"], summary["best_by_validation"]
    click.echo(f"backprop: {last['batches']} batches in {last['seconds']:.0f} s; start test "
               f"{100 * first['test_accuracy']:.2f}%, end validation "
               f"{100 * last['validation_accuracy']:.2f}%, test {100 * last['test_accuracy']:.2f}%;"
               f" best by validation: test {100 * best['test_accuracy']:.2f}% (batch "
               f"{best['batches']})")
    click.echo(f"summary: {out / 'summary.json'}, records: {out / runs.BACKPROP_FILE}, "
               f"networks: {out / 'best'} (best by validation), {out / 'last'}")


# -- minisense ensemble -----------------------------------------------------------------------

DAMAGE_AMOUNTS = {"swaps": (0, 1, 10, 100, 1000, 10_000),
                  "delete": (0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5)}


@main.command(name="ensemble")
@click.argument("members", nargs=-1, required=True, type=click.Path(path_type=pathlib.Path))
@click.option("--dataset", type=click.Choice(DATASETS),
              help="[default: the first member's dataset]")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=pathlib.Path))
@click.option("--damage", "damage_kind", type=click.Choice(ensemble.DAMAGE_KINDS),
              help="Also the accuracy under damage on the test split: random bit swaps, or "
                   "deleted nonzero weights.")
@click.option("--amount", "amounts", type=Finite(min=0), multiple=True,
              help="Damage levels (repeatable): swaps per network, or the deleted fraction. "
                   f"[default: swaps {DAMAGE_AMOUNTS['swaps']}, delete "
                   f"{DAMAGE_AMOUNTS['delete']}]")
@click.option("--damage-seeds", type=click.IntRange(1, MAX_REPEATS), default=3, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=pathlib.Path))
@click.option("--force", is_flag=True, help=FORCE_HELP)
def ensemble_command(members, dataset, data_dir, damage_kind, amounts, damage_seeds, json_path,
                     force):
    """A family ensemble (checkpoints, search or backprop folders, or a --chains folder): each
    member, the summed logits and the majority vote, and how often members disagree."""
    files.check_outputs({"--json": json_path}, _checkpoint_files(members), force)
    if damage_kind is None:
        _refuse_idle(_given("amounts", "damage_seeds"), "without --damage")
    r = ensemble.report(members, dataset, data_dir, damage_kind,
                        amounts or DAMAGE_AMOUNTS.get(damage_kind, ()), damage_seeds)
    click.echo(f"{len(r['members'])} members on {r['dataset']} ("
               f"{'one family' if r['same_family'] else 'not one family'}; logits summed as "
               f"{'integers' if r['commensurate'] else 'real numbers'})")
    for split in ("validation", "test"):
        e = r[split]
        click.echo(f"{split}: members {', '.join(f'{100 * a:.2f}%' for a in e['members'])}; "
                   f"ensemble {100 * e['sum']:.2f}% (summed logits), {100 * e['vote']:.2f}% "
                   f"(vote); best member {100 * max(e['members']):.2f}%; members disagree on "
                   f"{100 * e['mean_disagreement']:.2f}% of the images")
    for row in r.get("damage", {}).get("curve", []):
        click.echo(f"{damage_kind} {row['amount']:g}: single {100 * row['single_mean']:.2f}% "
                   f"(sd {100 * row['single_std']:.2f}), ensemble "
                   f"{100 * row['ensemble_mean']:.2f}% (sd {100 * row['ensemble_std']:.2f})")
    if json_path is not None:
        files.atomic_write_json(json_path, r)
        click.echo(f"results: {json_path}")


@main.group(name="bench")
def bench_group():
    """Speed benchmarks (figures printed, and JSON with --json)."""


@bench_group.command(name="train")
@click.option("--dataset", type=click.Choice(DATASETS), default="mnist", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=pathlib.Path))
@click.option("--batches", type=POSITIVE, default=50, show_default=True,
              help="SGD steps timed per repeat; the median repeat is scaled to an epoch.")
@click.option("--repeats", type=click.IntRange(1, MAX_REPEATS), default=5, show_default=True,
              help="Each repeat times the training steps, then the matrix products alone.")
@click.option("--epoch-images", type=POSITIVE, default=60_000, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=pathlib.Path))
@click.option("--force", is_flag=True, help=FORCE_HELP)
def bench_train(dataset, data_dir, batches, repeats, epoch_images, json_path, force):
    """Seconds per epoch of dense MNIST training at batch 100, by layer, forward and backward."""
    files.check_outputs({"--json": json_path}, (), force)
    _refuse_data_dir_for_digits(dataset, data_dir)
    data = load_dataset(dataset, data_dir)
    r = bench.bench_train(data.train.images, data.train.labels, batches=batches, repeats=repeats,
            epoch_images=epoch_images)
    click.echo(f"dense {dataset} training, batch {r['batch_size']} in {r['shards']} shards on "
               f"{r['threads']} threads (products alone: {r['blas_threads']} BLAS threads), "
               f"load average {r['load_average_before']:.2f} -> {r['load_average_after']:.2f}")
    click.echo(f"{'module':<12} {'forward s':>10} {'backward s':>11}   (per epoch of "
               f"{epoch_images} images)")
    for name, t in r["layers"].items():
        click.echo(f"{name:<12} {t['forward_seconds']:>10.2f} {t['backward_seconds']:>11.2f}")
    click.echo(f"{'other':<12} {r['other_seconds']:>10.2f}   (loss, update, the slower shard)")
    click.echo(f"epoch: {r['epoch_seconds']:.1f} s (forward {r['forward_seconds']:.1f} s, "
               f"backward {r['backward_seconds']:.1f} s); matrix products alone "
               f"{r['gemm_floor_epoch_seconds']:.1f} s; ratio {r['ratio_to_gemm_floor']:.2f}x "
               f"(median of the repeats: {', '.join(f'{x:.2f}' for x in r['ratios_by_repeat'])})")
    if json_path is not None:
        files.atomic_write_json(json_path, r)


@bench_group.command(name="search")
@click.option("--dataset", type=click.Choice(DATASETS), default="mnist", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=pathlib.Path))
@click.option("--images", type=POSITIVE, default=10_000, show_default=True,
              help="N evaluation images: the first N fitness images of a search.")
@click.option("--sparsity", type=Sparsity(0, 100, min_open=True, max_open=True), default=80.0,
              show_default=True,
              help="Sparsity of the random network.")
@click.option("--checkpoint", "checkpoints", multiple=True,
              type=click.Path(path_type=pathlib.Path),
              help="Also benchmark this trained network (repeatable), e.g. a p-SIREN 90% one.")
@click.option("--seconds-per-layer", type=Finite(0, min_open=True), default=5.0,
              show_default=True)
@click.option("--neighbours", type=NEIGHBOURS, default=sense.SenseConfig.neighbours,
              show_default=True, help="K: candidates per step for the screened comparison.")
@click.option("--screen-images", type=COUNT,
              default=sense.ENGINE_SCREEN_IMAGES["fast"], show_default=True,
              help="Screening slice S for the effective rate (0: skip that comparison).")
@click.option("--screen", "screen_by_layer", multiple=True, metavar="LAYER=S",
              help="A layer's own slice S (repeatable). [default: as minisense search]")
@click.option("--confirm", type=NEIGHBOURS, default=sense.SenseConfig.confirm,
              help="M: candidates confirmed on the whole set per step. [default: as minisense "
                   "search]")
@click.option("--confirm-stages", type=click.IntRange(1, sense.MAX_CONFIRM_STAGES),
              default=sense.SenseConfig.confirm_stages, show_default=True,
              help="As minisense search: confirmation in pieces with early rejection.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=pathlib.Path))
@click.option("--force", is_flag=True, help=FORCE_HELP)
def bench_search(dataset, data_dir, images, sparsity, checkpoints, seconds_per_layer, neighbours,
                 screen_images, screen_by_layer, confirm, confirm_stages, json_path, force):
    """Neighbour evaluations per second, per layer: delta evaluation vs a full forward pass, and
    screened (racing) steps' effective rate against whole-set steps of the same K."""
    files.check_outputs({"--json": json_path}, _checkpoint_files(checkpoints), force)
    if screen_images == 0:
        _refuse_idle(_given("confirm", "confirm_stages", "screen_by_layer"),
                     "with --screen-images 0 (no screened comparison)")
    _refuse_data_dir_for_digits(dataset, data_dir)
    results = bench.bench_search_networks(dataset, data_dir, images, sparsity, checkpoints,
                                    seconds_per_layer, screen_images=screen_images,
                                    confirm=confirm, neighbours=neighbours,
                                    confirm_stages=confirm_stages,
                                    screen_by_layer=_layer_values(screen_by_layer, int,
                                                                  "--screen") or None)
    for label, r in results["networks"].items():
        click.echo(f"{label}: {r['images']} images, {r['threads']} threads, cache "
                   f"{r['cache_bytes'] / 2**20:.0f} MiB, peak RSS "
                   f"{(r['peak_rss_bytes'] or 0) / 2**20:.0f} MiB, load average "
                   f"{r['load_average_before']:.2f} -> {r['load_average_after']:.2f}")
        click.echo(f"  {'layer':<10} {'delta evals/s':>14} {'full fwd evals/s':>17} {'ratio':>10}"
                   f" {'agrees':>7}")
        for layer, t in r["layers"].items():
            click.echo(f"  {layer:<10} {t['evals_per_second']:>14,.1f} "
                       f"{t['oracle_evals_per_second']:>17,.3f} "
                       f"{t['speedup_over_oracle']:>9,.0f}x {str(t['agrees_with_oracle']):>7}")
        screened = {k: t for k, t in r["layers"].items() if "effective_speedup" in t}
        if screened:
            click.echo(f"  steps of K={neighbours}, {confirm} confirmed: neighbours decided per "
                       "second, whole set vs screened on S images")
            click.echo(f"  {'layer':<10} {'S':>6} {'whole set':>10} {'screened':>10} {'ratio':>8}"
                       f" {'agrees':>7}")
            for layer, t in screened.items():
                click.echo(f"  {layer:<10} {t['screen_images']:>6} "
                           f"{t['whole_set_step_evals_per_second']:>10,.1f} "
                           f"{t['effective_evals_per_second']:>10,.1f} "
                           f"{t['effective_speedup']:>7,.2f}x "
                           f"{str(t['screened_agrees_with_whole_set']):>7}")
    if json_path is not None:
        files.atomic_write_json(json_path, results)


@bench_group.command(name="screening")
@click.option("--checkpoint", "from_checkpoint", type=click.Path(path_type=pathlib.Path),
              help="The network to climb from (else a random one, --sparsity).")
@click.option("--sparsity", type=Sparsity(0, 100, min_open=True, max_open=True),
              help="Without --checkpoint: a random network of this sparsity.")
@click.option("--dataset", type=click.Choice(DATASETS),
              help="[default: the checkpoint's dataset, else digits]")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=pathlib.Path))
@click.option("--layer", required=True, help="The layer whose neighbours are ranked.")
@click.option("--train-images", type=COUNT, default=0, show_default=True,
              help="Fitness images, as minisense search (0: the whole training split).")
@click.option("--steps", type=POSITIVE, default=20, show_default=True)
@click.option("--neighbours", type=NEIGHBOURS, default=100, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=pathlib.Path))
@click.option("--force", is_flag=True, help=FORCE_HELP)
def bench_screening(from_checkpoint, sparsity, dataset, data_dir, layer, train_images, steps,
                    neighbours, seed, json_path, force):
    """How often a screening slice of S images, M confirmed, keeps a step's best neighbour."""
    files.check_outputs({"--json": json_path},
                        _checkpoint_files([from_checkpoint] if from_checkpoint else []), force)
    net, data = runs.initial_network(seed, dataset, from_checkpoint, sparsity, data_dir)
    if layer not in net.weighted:
        raise click.BadParameter(f"{layer!r} is not a layer of the {net.architecture} network; "
                                 f"its layers are {', '.join(net.weighted)}", param_hint="--layer")
    images, labels = sense.fitness_set(data, train_images)
    r = bench.bench_screening(net, images, labels, layer, steps=steps, neighbours=neighbours,
                              seed=seed)
    w = r["whole_set"]
    click.echo(f"{layer}: {steps} steps of {neighbours} neighbours on {r['images']} fitness "
               f"images; whole-set search improved in {w['improving_steps']} steps, "
               f"{w['seconds'] / steps:.3f} s a step; load average "
               f"{r['load_average_before']:.2f} -> {r['load_average_after']:.2f}")
    click.echo(f"  {'S':>6} {'M':>3} {'best found':>11} {'improving found':>16} {'speedup':>8}")
    for row in r["rows"]:
        click.echo(f"  {row['screen_images']:>6} {row['confirm']:>3} {row['best_found']:>11} "
                   f"{row['improvement_found']:>16} {row['speedup']:>7.1f}x")
    if json_path is not None:
        files.atomic_write_json(json_path, r)


# -- minisense car --------------------------------------------------------------------------------

@main.group(name="car")
def car_group():
    """The car-racing task (Section 4.1): expert, demonstrations, closed-loop driving."""


def _print_returns(name: str, r: dict) -> None:
    click.echo(f"{name}: mean return {r['mean_return']:.1f} +- {r['sem_return']:.1f} (standard "
               f"error; min {r['min_return']:.1f}, max {r['max_return']:.1f}), laps finished "
               f"{r['laps']} of {len(r['episodes'])}, {r['below_solved']} below "
               f"{car.SOLVED_RETURN}")
    if "top_speed" in r:
        click.echo(f"left the road in {r['off_road_episodes']}, moved the wrong way in "
                   f"{r['wrong_way_episodes']}; top speed {r['top_speed']:.1f} units/s")


EXPERT_HELP = (f"The expert version (minisense/expert.py, EXPERTS); {DEFAULT_EXPERT} made the "
               "committed recording.")
LABELLING_HELP = ("How a step's 3-class label is chosen (minisense/expert.py)  [default: the "
                  "expert version's]")


def _expert_config(expert: str, labelling: str | None):
    """The named version, with --labelling when given (then it is no longer that version)."""
    return expert_config(expert) if labelling is None else expert_config(expert,
                                                                         labelling=labelling)


@car_group.command(name="expert")
@click.option("--episodes", type=click.IntRange(1, MAX_EPISODES), default=10, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Episodes run on seeds seed, seed+1, ...")
@click.option("--expert", type=click.Choice(list(EXPERTS)), default=DEFAULT_EXPERT,
              show_default=True, help=EXPERT_HELP)
@click.option("--labelling", type=click.Choice(LABELLINGS), help=LABELLING_HELP)
@click.option("--workers", type=JOBS, default=2, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=pathlib.Path))
@click.option("--force", is_flag=True, help=FORCE_HELP)
def car_expert(episodes, seed, expert, labelling, workers, json_path, force):
    """The pure-pursuit expert's returns, with continuous actions and with the 3 classes."""
    files.check_outputs({"--json": json_path}, (), force)
    config = _expert_config(expert, labelling)
    r = car.expert_returns(episodes, seed, config, workers, _progressbar, expert=expert)
    for name in ("continuous", "three_class"):
        click.echo(f"{name:<12} " + " ".join(f"{e['return']:.0f}" for e in r[name]["episodes"]))
    _print_returns(f"continuous expert {expert}", r["continuous"])
    _print_returns(f"3-class expert {expert} ({config.labelling} labels)", r["three_class"])
    if json_path is not None:
        files.atomic_write_json(json_path, r)
        click.echo(f"results: {json_path}")


@car_group.command(name="record")
@click.option("--episodes", type=click.IntRange(3, MAX_EPISODES), default=30, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Episode i runs on seed seed+i.")
@click.option("--out", type=click.Path(file_okay=False, path_type=pathlib.Path),
              help="Folder for carracing.npz + carracing.json  [default: the user cache's "
                   "carracing folder, where --dataset carracing looks last]")
@click.option("--expert", type=click.Choice(list(EXPERTS)), default=DEFAULT_EXPERT,
              show_default=True, help=EXPERT_HELP)
@click.option("--labelling", type=click.Choice(LABELLINGS), help=LABELLING_HELP)
@click.option("--workers", type=JOBS, default=2, show_default=True,
              help="Processes driving episodes at once.")
@click.option("--max-steps", type=click.IntRange(51, 1000), default=1000, show_default=True,
              help="Cut each episode after this many steps (for quick trials).")
@click.option("--noise", type=Finite(0, 1, max_open=True), default=0.0,
              show_default=True, help="Per-step probability of executing a random class for "
                                      "10 steps (labels stay the expert's).")
@click.option("--frame-kind", type=click.Choice(data.FRAME_KINDS), default="grey",
              show_default=True, help="What the frames show: the grey 32x32 frame, or that frame "
                                      "with its bottom 2 rows a speedometer (the car's speed "
                                      "across the frame's width, 30-70 units/s; -fine: the "
                                      "bottom row 50-66); networks trained on the recording "
                                      "drive with the same kind.")
@click.option("--force", is_flag=True, help="Replace a recording already in --out.")
def car_record(episodes, seed, out, expert, labelling, workers, max_steps, noise, frame_kind,
               force):
    """Record the expert's frames and 3-class labels (split train/validation/test by episode)."""
    out = out if out is not None else data.default_cache_dir() / "carracing"
    meta = car.record(episodes, seed, out, _expert_config(expert, labelling), workers,
                      _progressbar, command=list(sys.argv), max_steps=max_steps, noise=noise,
                      force=force, expert=expert, frame_kind=frame_kind)
    counts = ", ".join(f"{c} {n}" for c, n in zip(meta["classes"], meta["class_counts"]))
    split = ", ".join(f"{n} {k}" for k, n in meta["split_frames"].items())
    click.echo(f"{meta['frames']} frames from {episodes} episodes in {meta['seconds']:.0f} s "
               f"({meta['frames'] / max(meta['seconds'], 1e-9):.0f} frames/s): {split}; "
               f"classes: {counts}")
    click.echo(f"expert {meta['expert_name'] or expert + ' (changed)'} return: mean "
               f"{meta['expert_mean_return']:.1f}, min "
               f"{meta['expert_min_return']:.1f}, laps finished {meta['expert_laps']} of "
               f"{episodes}")
    click.echo(f"dataset: {out / 'carracing.npz'} (metadata {out / 'carracing.json'})")


@car_group.command(name="drive")
@click.argument("checkpoint_paths", metavar="CHECKPOINT...", nargs=-1, required=True,
                type=click.Path(path_type=pathlib.Path))
@click.option("--episodes", type=click.IntRange(1, MAX_EPISODES), default=10, show_default=True)
@click.option("--seed", type=SEED, default=1000, show_default=True,
              help="Episodes run on seeds seed, seed+1, ... (recordings use 0, 1, ...).")
@click.option("--max-steps", type=click.IntRange(1, 1000), default=1000, show_default=True,
              help="Stop each episode after this many steps (CarRacing-v3's limit is 1000).")
@click.option("--gif", type=click.Path(dir_okay=False, path_type=pathlib.Path),
              help="Also write an animation of the first episode's drive to this GIF.")
@click.option("--gif-every", type=click.IntRange(1, 1000), default=2, show_default=True,
              help="Put every N-th step in the GIF (it plays at real-time speed either way).")
@click.option("--workers", type=JOBS, default=2, show_default=True)
@click.option("--logit-offset", type=Numbers(),
              help="Add these to the real logits (left,straight+gas,right) before the argmax: "
                   "post-hoc logit adjustment, e.g. 0,2,0 for more gas; the weights stay as "
                   "they are  [default: none]")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=pathlib.Path))
@click.option("--force", is_flag=True, help="Replace an existing --json or --gif file (never a "
                                             "file it reads or a run's).")
def car_drive(checkpoint_paths, episodes, seed, max_steps, gif, gif_every, workers, logit_offset,
              json_path, force):
    """Let a car network checkpoint drive, closed loop: returns and laps finished. Several
    checkpoints (or a --chains folder) drive as a family ensemble (summed logits)."""
    files.check_outputs({"--json": json_path, "--gif": gif}, _checkpoint_files(checkpoint_paths),
                        force)
    if gif is None:
        _refuse_idle(_given("gif_every"), "without --gif")
    r = car.drive(checkpoint_paths, episodes, seed, max_steps, workers, _progressbar,
                  logit_offset)
    click.echo("returns " + " ".join(f"{e['return']:.0f}" for e in r["episodes"]))
    offset = ("" if logit_offset is None else
              f" (logit offset {','.join(f'{v:g}' for v in logit_offset)})")
    _print_returns((f"network {r['checkpoint']}" if len(r["members"]) == 1 else
                    f"ensemble of {len(r['members'])} networks") + offset, r)
    if gif is not None:
        g = car.write_gif(checkpoint_paths, seed, gif, max_steps, every=gif_every,
                          logit_offset=logit_offset)
        r["gif"] = g
        click.echo(f"gif: {gif} ({g['gif_frames']} frames, seed {seed}, return "
                   f"{g['return']:.1f})")
    if json_path is not None:
        files.atomic_write_json(json_path, r)
        click.echo(f"results: {json_path}")


@car_group.command(name="compare")
@click.argument("a_json", metavar="A.json", type=click.Path(exists=True, dir_okay=False,
                                                             path_type=pathlib.Path))
@click.argument("b_json", metavar="B.json", type=click.Path(exists=True, dir_okay=False,
                                                             path_type=pathlib.Path))
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=pathlib.Path))
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=pathlib.Path),
              help="Also draw one point per track (B's return across, A's up) into this PNG.")
@click.option("--force", is_flag=True, help="Replace an existing --json or --plot file (never "
                                             "a file it reads, nor a run's).")
def car_compare(a_json, b_json, json_path, plot_path, force):
    """Two drivers on the same tracks (the --json of car expert or car drive; an expert's
    3-class returns): the mean paired difference A - B and its standard error."""
    plots.check_png(plot_path, "--plot")
    files.check_outputs({"--json": json_path, "--plot": plot_path}, (a_json, b_json), force)
    r = car.compare_files(a_json, b_json)
    click.echo(f"A - B over {r['episodes']} tracks (seeds {r['seeds'][0]}-{r['seeds'][-1]}): "
               f"{r['mean_difference']:+.1f} +- {r['sem_difference']:.1f} (standard error); "
               f"A {r['mean_a']:.1f}, B {r['mean_b']:.1f}; A better on {r['a_better']}, B on "
               f"{r['b_better']}")
    if plot_path is not None:
        click.echo(f"picture: {carplots.plot_paired(r, plot_path)}")
    if json_path is not None:
        files.atomic_write_json(json_path, r)
        click.echo(f"results: {json_path}")


@car_group.command(name="dagger")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=pathlib.Path),
              required=True, help="The expert's recording (car record --out) to start from.")
@click.option("--out", type=click.Path(file_okay=False, path_type=pathlib.Path), required=True,
              help="The run folder; run the same command again to continue a killed run.")
@click.option("--rounds", type=click.IntRange(0, dagger.MAX_ROUNDS), default=5,
              show_default=True)
@click.option("--episodes", type=click.IntRange(1, MAX_EPISODES), default=4, show_default=True,
              help="Episodes the network drives per round (fresh training tracks).")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Every round's tracks, coin flips and training seed come from it.")
@click.option("--beta0", type=Finite(0, 1), default=0.0, show_default=True,
              help="Chance per step that the expert's action is executed in round 0.")
@click.option("--beta-decay", type=Finite(0, 1), default=0.5, show_default=True,
              help="beta_r = beta0 * decay^r.")
@click.option("--expert", type=click.Choice(list(EXPERTS)),
              help="The expert that labels  [default: the recording's]")
@click.option("--trainer", type=click.Choice(dagger.TRAINERS), default="psiren",
              show_default=True, help="p-SIREN from scratch on the aggregate; p-SIREN once "
                                      "(the --epochs-* given, step 4 included), then its step 4 "
                                      "(--epochs-binary epochs) continued from the last network; "
                                      "or SENSE continued from the last network.")
@click.option("--checkpoint", "start", type=click.Path(path_type=pathlib.Path), multiple=True,
              help="Start from this car network instead of training one on the recording; "
                   "repeated: an ensemble's members.")
@click.option("--members", type=click.IntRange(1, dagger.MAX_MEMBERS), default=None,
              help="An ensemble of this many networks drives (summed logits) and each is "
                   "trained again every round  [default: one per --checkpoint, else 1]")
@click.option("--sparsity", type=Sparsity(0, 100, max_open=True), default=90.0,
              show_default=True, help="p-SIREN's; with --trainer sense and no --checkpoint, "
                                      "that of the random start.")
@click.option("--epochs-dense", type=EPOCHS, default=4, show_default=True)
@click.option("--epochs-prune", type=EPOCHS, default=2, show_default=True)
@click.option("--epochs-sparse", type=EPOCHS, default=2, show_default=True)
@click.option("--epochs-binary", type=EPOCHS, default=3, show_default=True)
@click.option("--sense-steps", type=POSITIVE, default=200, show_default=True,
              help="With --trainer sense: steps per round's search.")
@click.option("--sense-minutes", type=Finite(0, min_open=True), default=10.0, show_default=True,
              help="With --trainer sense: time budget per round's search.")
@click.option("--sense-keep", type=click.Choice(runs.KEEP), default="best",
              show_default=True,
              help="With --trainer sense: the network each round's search hands on, the best "
                   "by validation frames or the search's last (which keeps climbing the "
                   "aggregate after validation frames stop rising).")
@click.option("--sense-subsample", type=Finite(min=0, max=1, min_open=True), default=1.0,
              show_default=True,
              help="With --trainer sense: each round's search scores a random share F of the "
                   "aggregate, drawn afresh every --sense-redraw-steps steps (search "
                   "--subsample).")
@click.option("--sense-redraw-steps", type=POSITIVE, default=None,
              help="With --sense-subsample: steps between fresh draws. [default: 1000]")
@click.option("--near-departure", type=click.IntRange(0, 1000), default=0, show_default=True,
              help="Keep of each episode only the frames within this many steps of where the "
                   "car first left the road (none if it never did); 0: every frame.")
@click.option("--repeat-kept", type=click.IntRange(1, dagger.MAX_REPEAT), default=1,
              show_default=True, help="Add each kept frame this many times (more weight in the "
                                      "fitness or the loss).")
@click.option("--max-steps", type=click.IntRange(51, 1000), default=1000, show_default=True,
              help="Cut each episode after this many steps (for quick trials).")
@click.option("--logit-offset", type=Numbers(),
              help="The network drives the rounds with these added to its real logits "
                   "(left,straight+gas,right), as car drive --logit-offset; the labels and the "
                   "training are unchanged  [default: none]")
@click.option("--workers", type=JOBS, default=1, show_default=True)
def car_dagger(data_dir, out, rounds, episodes, seed, beta0, beta_decay, expert, trainer, start,
               members, sparsity, epochs_dense, epochs_prune, epochs_sparse, epochs_binary,
               sense_steps, sense_minutes, sense_keep, sense_subsample, sense_redraw_steps,
               near_departure, repeat_kept, max_steps, logit_offset, workers):
    """DAgger (Ross et al. 2011): the network drives, the expert labels the frames it visits,
    they join the training episodes, and the network is trained again; a round a line in
    OUT/rounds.jsonl, the aggregate recording in OUT/data."""
    config = psiren.config_for("carracing", sparsity=sparsity, epochs={
        "dense": epochs_dense, "prune": epochs_prune, "sparse": epochs_sparse,
        "binary": epochs_binary})
    settings = dagger.settings_for(data_dir, rounds, episodes, seed, beta0, beta_decay, expert,
                                   trainer, config, sense_steps, sense_minutes * 60, max_steps,
                                   list(start) or None, members, sense_keep, near_departure,
                                   repeat_kept, sense_subsample, sense_redraw_steps,
                                   logit_offset)
    r = dagger.dagger(settings, out, workers, _progressbar, click.echo, list(sys.argv))
    click.echo(f"{len(r['rounds'])} rounds; network: {r['checkpoint']}; aggregate recording: "
               f"{r['data']}")


# -- minisense plot -------------------------------------------------------------------------------

@main.command(name="plot")
@click.argument("run_folders", metavar="RUN...", nargs=-1, required=True,
                type=click.Path(path_type=pathlib.Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=pathlib.Path),
              help="The PNG to write  [default: RUN/plot.png; needed for several runs]")
@click.option("--reach", "reach", multiple=True, metavar="PCT",
              type=Finite(min=0, max=100, min_open=True),
              help="Several runs: report when each first reaches this validation accuracy "
                   "(repeatable).")
@click.option("--expert", type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path),
              help="A DAgger run only: the --json of car expert, drawn as the expert's mean "
                   "return  [default: the recording's, when comparable]")
@click.option("--force", is_flag=True, help="Replace an existing --out file.")
def plot(run_folders, out, reach, expert, force):
    """A picture of a run (a train, search, search --chains, --backprop or car dagger folder) as
    one PNG: accuracy, loss and sparsity by epoch, accuracy by step and second, moves accepted,
    or a DAgger run's returns, frames and accuracies by round.

    Several runs (searches and p-SIREN trainings): their validation accuracy against seconds on
    one picture, the plotted numbers in a JSON beside it (--out with .json)."""
    if len(run_folders) == 1:
        if reach:
            raise click.UsageError("--reach compares several runs; give two or more RUNs, or "
                                   "drop it")
        click.echo(f"picture: {runplots.plot_run(run_folders[0], out, force, expert)}")
        return
    if out is None or expert is not None:
        raise click.UsageError("several RUNs are drawn on one picture: name it with --out F.png "
                               "(and --expert is for one DAgger run)")
    png, result = curves.compare_runs(run_folders, out, [r / 100 for r in reach], force)
    for name, c in result["runs"].items():
        first = "".join(f", {level}% never reached" if t is None else
                        f", first {level}% at {t:,.0f} s"
                        for level, t in c["first_reaches"].items())
        click.echo(f"{name}: {c['setting'].split(':')[0]}, seed {c['seed']}, validation "
                   f"{100 * c['best']['validation_accuracy']:.2f}%, test "
                   f"{100 * c['best']['test_accuracy']:.2f}%{first}")
    click.echo(f"picture: {png}, numbers: {png.with_suffix('.json')}")


# -- minisense reproduce --------------------------------------------------------------------------

FIGURE_HELP = ", ".join(f"{name} ({figure.kind}, {figure.dataset})"
                        for name, figure in reproduce.FIGURES.items())


@main.command(name="reproduce", help=f"""Regenerate one of the paper's figures: its experiment,
a PNG, and a JSON of every plotted number with the exact command, in OUT/FIGURE/.

FIGURE is one of: {FIGURE_HELP}.""")
@click.argument("figure")
@click.option("--quick", is_flag=True,
              help="The same code on tiny budgets (digits for MNIST/Fashion-MNIST), a minute or "
                   "two per figure.")
@_parallel_options("Local worker processes for the independent runs (sparsity x seed, "
                   "chunks of neighbours).")
@click.option("--out", type=click.Path(file_okay=False, path_type=pathlib.Path),
              help="[default: runs/figures, or runs/quick with --quick]")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=pathlib.Path),
              help="Folder holding the datasets (else $MINISENSE_DATA, then the cache).")
@click.option("--checkpoint", "checkpoint_path", type=click.Path(path_type=pathlib.Path),
              help="The 90% network of fig3-5, 9-11  [default: OUT/psiren/<dataset>-p90, "
                   "trained there if missing]")
@click.option("--dataset", type=click.Choice(DATASETS),
              help="Run the figure on another dataset than the paper's (e.g. digits).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--force", is_flag=True,
              help="Replace the figure's results (and a search of other settings) in OUT.")
def reproduce_figure(figure, quick, jobs, backend, scheduler, out, data_dir, checkpoint_path,
                     dataset, seed, force):
    record = reproduce.run(figure, quick=quick, out=out, data_dir=data_dir,
                           checkpoint_path=checkpoint_path, seed=seed, jobs=jobs,
                           backend=backend, scheduler=scheduler, dataset=dataset,
                           progress=_progressbar, log=click.echo, force=force)
    folder = pathlib.Path(record["folder"])
    click.echo(f"{record['summary']} ({record['wall_seconds']:.0f} s)")
    click.echo(f"figure: {folder / record['png']}, numbers: {folder / (figure + '.json')}")


if __name__ == "__main__":
    main()
