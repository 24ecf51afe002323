"""The car-racing task (Section 4.1, dynamic task): frames, demonstrations, closed-loop driving.

The environment is Gymnasium's ``CarRacing-v3`` with continuous actions; a policy picks one of
the three classes of ``minisense.expert`` (left / straight+gas / right) every step. An episode
ends when the lap is finished (95% of the track's tiles visited and the start tile reached),
when the car leaves the playfield, or after ``MAX_STEPS`` = 1,000 steps (CarRacing-v3's
registered time limit). Its return is the environment's: +1000/N per new tile of the N, -0.1 per
step, -100 for leaving the playfield; a finished lap scores 1000 - 0.1 * steps.

What the network sees of a frame, and the recording's file format and split, are defined in
``minisense.data`` (the car-racing recording). The first ``ZOOM_STEPS`` = 50 frames of an
episode (1 s at 50 FPS) show the camera zooming in; they are not recorded. The network still
drives through them in ``drive``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import os
import pathlib
import time
from dataclasses import asdict

import numpy as np

from minisense import __version__, ensemble, files, runlogs
from minisense.checkpoint import checkpoint_paths, load
from minisense.data import (
    FILE_STEM,
    FRAME_KINDS,
    FRAME_SIZE,
    check_frame_kind,
    frame_kind_in,
    preprocess,
    split_episodes,
)
from minisense.errors import MinisenseError
from minisense.expert import (
    ACTIONS,
    CLASSES,
    DEFAULT_EXPERT,
    ExpertConfig,
    _nearest,
    continuous_action,
    expert_config,
    label,
)
from minisense.fast.shards import one_blas_thread
from minisense.sense import MAX_SEED

ENV_ID = "CarRacing-v3"
MAX_STEPS = 1000
SOLVED_RETURN = 900           # Gymnasium counts CarRacing solved at this mean over 100 episodes
ZOOM_STEPS = 50
# What a recording's "frame" note says of each kind's bottom rows (minisense.data draws them)
FRAME_NOTES = {
    "grey": "",
    "speedometer": "; the bottom 2 rows a speedometer (minisense.data)",
    "speedometer-fine": "; the bottom 2 rows a speedometer, the bottom one fine (minisense.data)",
}
# What run_episode says of where the car went (car_state), beside return, steps and lap.
TRACE = {"top_speed", "off_road_steps", "first_off_road", "wrong_way_steps"}


def make_env(render: bool = True):
    """A continuous-action CarRacing-v3. ``render=False`` skips drawing the frame: the physics,
    and so the expert's returns, are the same, and drawing, the main cost, is skipped."""
    try:
        import gymnasium
    except ImportError:
        raise MinisenseError("the car-racing task needs gymnasium with Box2D; install it with "
                             "pip install \"gymnasium[box2d]\"") from None
    env = gymnasium.make(ENV_ID, render_mode="rgb_array", continuous=True,
                         max_episode_steps=MAX_STEPS, disable_env_checker=True)
    if not render:
        env.unwrapped._render = lambda mode: None     # step() would draw the observation
    return env


def car_state(env, track: np.ndarray) -> tuple[float, bool, bool]:
    """Where the car is, read from the simulator (as the expert reads it): its speed in world
    units per second, whether any wheel touches a road tile, and whether it moves the wrong way,
    against the track's direction at the nearest waypoint of the whole loop (at more than 1 unit
    per second). A car that has left the road and come back onto it the wrong way, or onto a
    stretch it has driven, finds no new tiles: its return falls 0.1 a step. ``track`` is the
    episode's ``np.array(env.unwrapped.track)`` (made once, not every step)."""
    u = env.unwrapped
    hull = u.car.hull
    velocity = np.array(hull.linearVelocity)
    speed = float(np.hypot(*velocity))
    on_road = any(wheel.tiles for wheel in u.car.wheels)
    nearest = _nearest(u, track, np.array(hull.position), window=0)
    direction = track[(nearest + 1) % len(track), 2:] - track[nearest, 2:]
    return speed, on_road, bool(speed > 1.0 and velocity @ direction < 0)


def run_episode(seed: int, policy, render: bool = True, max_steps: int = MAX_STEPS,
                on_frame=None) -> dict:
    """Drive one episode of CarRacing-v3 reset with ``seed``.

    ``policy(env, observation)`` -> (continuous action (3,), class or None); ``on_frame(step,
    observation, class, env)`` sees every observation the policy acted on, the environment
    still in the state the observation shows. Returns the episode's
    return, steps, whether the lap was finished, and where the car went (:func:`car_state`
    after every step): its top speed, the steps with no wheel on the road (and the first of
    them) and the steps it moved the wrong way.
    """
    env = make_env(render)
    try:
        observation, _ = env.reset(seed=int(seed))
        track = np.array(env.unwrapped.track)
        total, lap, step = 0.0, False, 0
        top_speed, off_road, first_off_road, wrong_way = 0.0, 0, None, 0
        while step < max_steps:
            action, cls = policy(env, observation)
            if on_frame is not None:
                on_frame(step, observation, cls, env)
            observation, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            speed, on_road, wrong = car_state(env, track)
            top_speed = max(top_speed, speed)
            if not on_road:
                off_road += 1
                first_off_road = step if first_off_road is None else first_off_road
            wrong_way += wrong
            step += 1
            if terminated or truncated:
                lap = bool(info.get("lap_finished", False))
                break
    finally:
        env.close()
    return {"seed": int(seed), "return": total, "steps": step, "lap": lap,
            "top_speed": top_speed, "off_road_steps": off_road,
            "first_off_road": first_off_road, "wrong_way_steps": wrong_way}


def car_speed(env) -> float:
    """The car's speed in world units per second, as CarRacing's speed indicator reads it."""
    return float(np.hypot(*env.unwrapped.car.hull.linearVelocity))


def network_frame(env, observation, kind: str = "grey") -> np.ndarray:
    """What a car network of frame ``kind`` sees of ``observation`` (``minisense.data``): the
    32x32 grey frame, or a speedometer frame with the car's speed now."""
    return preprocess(observation, None if kind == "grey" else car_speed(env), kind)


def expert_policy(config: ExpertConfig, three_classes: bool = True):
    """The expert as a ``run_episode`` policy: its 3-class action, or its continuous one."""
    def policy(env, observation):
        if not three_classes:
            return continuous_action(env, config), None
        cls = label(env, config)
        return ACTIONS[cls], cls
    return policy


# -- expert returns -------------------------------------------------------------------------------

def _no_progress(iterable, length=None, label=""):
    return contextlib.nullcontext(iterable)


def _map(function, items: list, workers: int, progress, label: str) -> list:
    """``[function(x) for x in items]`` in ``workers`` processes, in order, with a progress bar."""
    workers = max(1, min(workers, len(items)))
    with contextlib.ExitStack() as stack:
        if workers == 1:
            results = map(function, items)
        else:
            pool = stack.enter_context(concurrent.futures.ProcessPoolExecutor(workers))
            results = pool.map(function, items)
        with progress(results, length=len(items), label=label) as bar:
            return list(bar)


def _expert_episode(args) -> dict:
    seed, config, three_classes = args
    return run_episode(seed, expert_policy(config, three_classes), render=False)


def _expert(config: ExpertConfig | None, name: str | None) -> tuple[ExpertConfig, str | None]:
    """The knobs to drive with and the version's name: ``config`` as given (named ``name`` when
    it is that version's unchanged), else the version ``name`` (default DEFAULT_EXPERT)."""
    if config is None:
        name = name or DEFAULT_EXPERT
        config = expert_config(name)
    elif name is not None and config != expert_config(name):
        name = None                        # knobs changed from the named version: no name
    config.validate()
    return config, name


def expert_returns(episodes: int, seed: int = 0, config: ExpertConfig | None = None,
                   workers: int = 2, progress=_no_progress, expert: str | None = None) -> dict:
    """The expert's returns on seeds ``seed .. seed+episodes-1``, continuous and 3-class.
    ``expert`` names a version (``minisense.expert.EXPERTS``); ``config`` gives the knobs
    directly (for trials of changed knobs)."""
    config, name = _expert(config, expert)
    check_seed(seed)
    if episodes < 1:
        raise MinisenseError(f"episodes must be >= 1, got {episodes}")
    seeds = list(range(seed, seed + episodes))
    result = {"expert_name": name, "expert": asdict(config), "seeds": seeds}
    for name, three in (("continuous", False), ("three_class", True)):
        runs = _map(_expert_episode, [(s, config, three) for s in seeds], workers, progress,
                    f"expert {name.replace('_', '-')}")
        result[name] = summarize(runs)
    return result


def summarize(runs: list[dict]) -> dict:
    """Mean, its standard error, min, max return, laps finished, the returns in seed order, how
    many are below the 900 at which Gymnasium counts CarRacing solved, how many episodes left the
    road and moved the wrong way, and the top speed (when every episode says so), of
    ``run_episode`` results."""
    returns = np.array([r["return"] for r in runs])
    # Episodes written before they said where the car went have no trace to count.
    traced = {} if not all(TRACE <= set(r) for r in runs) else {
        "off_road_episodes": sum(r["off_road_steps"] > 0 for r in runs),
        "wrong_way_episodes": sum(r["wrong_way_steps"] > 0 for r in runs),
        "top_speed": max(r["top_speed"] for r in runs)}
    return {"mean_return": float(returns.mean()), "sem_return": _sem(returns),
            "min_return": float(returns.min()), "max_return": float(returns.max()),
            "laps": int(sum(r["lap"] for r in runs)),
            "below_solved": int((returns < SOLVED_RETURN).sum()), **traced,
            "returns": returns.tolist(), "episodes": runs}


def _sem(values) -> float:
    """The standard error of the mean, s / sqrt(n) with the n-1 sample deviation s; 0 for one
    value (there is no spread to estimate)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


# -- comparing two drivers ------------------------------------------------------------------------

def paired(a_returns, b_returns) -> dict:
    """Two drivers on the same tracks: the per-track differences d = a - b, their mean and its
    standard error s_d / sqrt(n). Pairing removes the tracks' own spread (a long track is hard
    for both), so the error is far smaller than either driver's own standard error.

    a_returns, b_returns : sequences of n floats, track i's return for each driver.
    """
    a, b = np.asarray(a_returns, np.float64), np.asarray(b_returns, np.float64)
    if a.ndim != 1 or a.shape != b.shape or len(a) == 0:
        raise MinisenseError(f"paired returns need two equal, non-empty lists; got {a.size} and "
                             f"{b.size}")
    d = a - b
    return {"episodes": len(d), "mean_a": float(a.mean()), "mean_b": float(b.mean()),
            "mean_difference": float(d.mean()), "sem_difference": _sem(d),
            "a_better": int((d > 0).sum()), "b_better": int((d < 0).sum()),
            "differences": d.tolist()}


def _returns_by_seed(result: dict, name: str) -> tuple[list[int], list[float]]:
    """The seeds and 3-class returns of a ``car expert`` or ``car drive`` JSON result."""
    try:
        runs = result.get("three_class", result)["episodes"]
        seeds, returns = [int(r["seed"]) for r in runs], [float(r["return"]) for r in runs]
    except (AttributeError, KeyError, TypeError, ValueError):
        seeds = []
    if not seeds:
        raise MinisenseError(f"{name} holds no episodes with seeds and returns: give the --json "
                             "of car expert or car drive")
    return seeds, returns


def compare(a: dict, b: dict, a_name: str = "A", b_name: str = "B") -> dict:
    """``paired`` on two ``car expert`` / ``car drive`` results (their 3-class returns) that
    drove the same seeds in the same order; a clear error if they did not. The result also
    holds each driver's returns in seed order ("returns_a", "returns_b"), as a scatter of one
    point per track needs (``minisense.carplots.draw_paired``)."""
    seeds_a, returns_a = _returns_by_seed(a, a_name)
    seeds_b, returns_b = _returns_by_seed(b, b_name)
    if seeds_a != seeds_b:
        raise MinisenseError(f"{a_name} and {b_name} drove different tracks (seeds "
                             f"{_seed_range(seeds_a)} and {_seed_range(seeds_b)}); a paired "
                             "comparison needs the same seeds")
    return {"seeds": seeds_a, "a": a_name, "b": b_name, "returns_a": returns_a,
            "returns_b": returns_b, **paired(returns_a, returns_b)}


def compare_files(a_path, b_path) -> dict:
    """``compare`` on two JSON files written by ``car expert --json`` or ``car drive --json``."""
    a_path, b_path = pathlib.Path(a_path), pathlib.Path(b_path)
    return compare(runlogs.read_json(a_path), runlogs.read_json(b_path), str(a_path), str(b_path))


def _seed_range(seeds: list[int]) -> str:
    return f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])


# -- recording demonstrations ---------------------------------------------------------------------

def perturbed(policy, noise: float, rng: np.random.Generator, hold_steps: int = 10):
    """``policy`` whose *executed* action is, with probability ``noise`` per step, replaced by a
    random class held for ``hold_steps`` steps; the class reported (the label) stays the
    policy's own. The car then visits states off the expert's line and the recording shows how
    the expert would recover from them (the usual remedy for imitation drifting off course)."""
    held = {"class": 0, "left": 0}

    def act(env, observation):
        action, cls = policy(env, observation)
        if held["left"] == 0 and rng.random() < noise:
            held.update({"class": int(rng.integers(len(ACTIONS))), "left": hold_steps})
        if held["left"] > 0:
            held["left"] -= 1
            action = ACTIONS[held["class"]]
        return action, cls
    return act


def _record_episode(args) -> dict:
    seed, config, max_steps, noise, kind = args
    frames, labels, steps = [], [], []

    def keep(step, observation, cls, env):
        if step >= ZOOM_STEPS:
            frames.append(network_frame(env, observation, kind))
            labels.append(cls)
            steps.append(step)

    policy = expert_policy(config)
    if noise > 0:
        policy = perturbed(policy, noise, np.random.default_rng([seed, 1]))
    run = run_episode(seed, policy, render=True, max_steps=max_steps, on_frame=keep)
    empty = np.zeros((0, FRAME_SIZE, FRAME_SIZE), np.uint8)
    return {**run, "frames": np.array(frames, np.uint8) if frames else empty,
            "labels": np.array(labels, np.uint8), "steps": np.array(steps, np.int32)}


def check_seed(seed) -> None:
    """Episode seeds are whole numbers in 0..MAX_SEED (Gymnasium and NumPy take no negative
    ones)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise MinisenseError(f"seed {seed!r} is outside 0..{MAX_SEED}; give --seed in that range")


def record(episodes: int, seed: int, out, config: ExpertConfig | None = None, workers: int = 2,
           progress=_no_progress, command: list[str] | None = None,
           max_steps: int = MAX_STEPS, noise: float = 0.0, force: bool = False,
           expert: str | None = None, frame_kind: str = "grey") -> dict:
    """Record the expert driving ``episodes`` episodes into ``out/carracing.npz`` + ``.json``;
    a recording already there is replaced only with ``force``.

    Episode i runs on CarRacing-v3 seed ``seed + i``, in ``workers`` processes, for at most
    ``max_steps`` steps (shorter only for tests); the result does not depend on ``workers``.
    With ``noise`` > 0 the executed actions are perturbed (``perturbed``), the labels are still
    the expert's, and the recorded returns are those of the perturbed driver. ``expert`` names
    the expert version (default ``DEFAULT_EXPERT``), ``config`` gives its knobs directly.
    ``frame_kind`` is what the frames show (``minisense.data.FRAME_KINDS``). Returns the
    metadata written to the JSON file.
    """
    config, name = _expert(config, expert)
    splits = split_episodes(episodes)
    if frame_kind not in FRAME_KINDS:
        raise MinisenseError(f"unknown frame kind {frame_kind!r}; choose one of "
                             f"{', '.join(FRAME_KINDS)}")
    if not 0 <= noise < 1:
        raise MinisenseError(f"noise must be a probability in [0, 1), got {noise}")
    if not ZOOM_STEPS < max_steps <= MAX_STEPS:
        raise MinisenseError(f"max steps must be in {ZOOM_STEPS + 1}..{MAX_STEPS} (the first "
                             f"{ZOOM_STEPS} frames are not recorded), got {max_steps}")
    check_seed(seed)
    out = pathlib.Path(out)
    held = [p for p in (out / f"{FILE_STEM}.npz", out / f"{FILE_STEM}.json") if p.exists()]
    if held and not force:
        raise MinisenseError(f"{out} already holds a recording ({held[0].name}); pass --force to "
                             "replace it, or choose another --out")
    with files.folder_lock(out):            # writable, and one recorder at a time
        return _record(episodes, seed, out, config, name, workers, progress, command, max_steps,
                       noise, splits, frame_kind)


def _record(episodes, seed, out, config, name, workers, progress, command, max_steps, noise,
            splits, kind) -> dict:
    started = time.perf_counter()
    jobs = [(seed + i, config, max_steps, noise, kind) for i in range(episodes)]
    runs = _map(_record_episode, jobs, workers, progress, "recording")
    seconds = time.perf_counter() - started
    frames = np.concatenate([r["frames"] for r in runs])
    labels = np.concatenate([r["labels"] for r in runs])
    arrays = {
        "frames": frames, "labels": labels,
        "episode": np.concatenate([np.full(len(r["labels"]), i, np.int32)
                                   for i, r in enumerate(runs)]),
        "step": np.concatenate([r["steps"] for r in runs]),
        "seeds": np.array([r["seed"] for r in runs], np.int64),
        "returns": np.array([r["return"] for r in runs], np.float64),
        "laps": np.array([r["lap"] for r in runs], bool),
    }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    files.atomic_write_bytes(out / f"{FILE_STEM}.npz", buffer.getvalue())
    counts = {name: int(np.isin(arrays["episode"], ids).sum()) for name, ids in splits.items()}
    meta = {
        "format": "minisense-carracing", "format_version": 1, "minisense_version": __version__,
        "environment": ENV_ID, "episodes": episodes, "seed": seed, "frames": int(len(labels)),
        "frame": f"{FRAME_SIZE}x{FRAME_SIZE} uint8: grey (0.299 R + 0.587 G + 0.114 B) of the "
                 "whole 96x96 observation, 3x3 block mean; the first "
                 f"{ZOOM_STEPS} (zoom) frames of each episode dropped" + FRAME_NOTES[kind],
        "frame_kind": kind,
        "classes": list(CLASSES), "actions": ACTIONS.tolist(),
        "class_counts": np.bincount(labels, minlength=len(CLASSES)).tolist(),
        "splits": splits, "split_frames": counts,
        "split_rule": "by episode: the last ceil(E/10) test, the ceil(E/10) before validation, "
                      "the rest train",
        "expert_name": name, "expert": asdict(config), "noise": noise,
        "expert_mean_return": float(arrays["returns"].mean()),
        "expert_min_return": float(arrays["returns"].min()),
        "expert_laps": int(arrays["laps"].sum()),
        "max_steps": max_steps, "workers": workers, "seconds": seconds, "command": command,
    }
    files.atomic_write_json(out / f"{FILE_STEM}.json", meta)
    return meta


# -- closed-loop driving --------------------------------------------------------------------------

def network_policy(nets, kind: str = "grey", logit_offset=None):
    """The binary car network, or a family ensemble of them (a list: summed logits,
    ``minisense.ensemble``), seeing frames of ``kind``, as a ``run_episode`` policy (exact
    integer inference). ``logit_offset`` (one real number a class), if given, is added to the
    real logits before the argmax (:func:`adjusted_class`); the weights stay as they are."""
    nets = nets if isinstance(nets, list) else [nets]

    def policy(env, observation):
        logits = ensemble.member_logits(nets, network_frame(env, observation, kind)[None])
        cls = (int(ensemble.combine(logits)["sum"][0]) if logit_offset is None else
               adjusted_class(nets, logits, logit_offset)[0])
        return ACTIONS[cls], cls
    return policy


def adjusted_class(nets, logits: np.ndarray, logit_offset) -> np.ndarray:
    """Post-hoc logit adjustment (Menon et al. 2021, "Long-tail learning via logit adjustment"):
    argmax of the summed real logits (``logit_scale * Z``) plus ``logit_offset``. Where the frame
    cannot decide the label (the gas at the speed cap, results book), the argmax of a network
    never picks the rarer class; an offset moves the decision there and nothing else.
    logits (m, n, classes) from ``ensemble.member_logits``; returns classes (n,)."""
    summed = logits.sum(axis=0)
    if summed.dtype.kind != "f":                       # commensurate: one logit scale for all
        summed = nets[0].logit_scale * summed.astype(np.float64)
    return (summed + np.asarray(logit_offset, dtype=np.float64)).argmax(axis=1)


def check_logit_offset(logit_offset) -> None:
    """A one-line error unless ``logit_offset`` is None or one finite number a class."""
    if logit_offset is None:
        return
    values = np.asarray(logit_offset, dtype=object).ravel().tolist()
    if len(values) != len(CLASSES) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
            for v in values):
        raise MinisenseError(f"the logit offset must be {len(CLASSES)} finite numbers, one a "
                             f"class ({', '.join(CLASSES)}), e.g. 0,2,0; got {logit_offset!r}")


def _networks(paths) -> tuple[list, str]:
    """The car networks of the checkpoints ``paths`` and the frame kind they all see."""
    loaded = [load(p, architecture="car") for p in paths]
    kind = frame_kind_in(loaded[0][1], checkpoint_paths(paths[0])[1])
    for path, (_, meta) in zip(paths, loaded):
        check_frame_kind(meta, kind, checkpoint_paths(path)[1])
    return [net for net, _ in loaded], kind


def _drive_episode(args) -> dict:
    paths, seed, max_steps, logit_offset = args
    nets, kind = _networks(paths)
    counts = np.zeros(len(CLASSES), np.int64)

    def count(step, observation, cls, env):
        counts[cls] += 1

    # One BLAS thread: one frame's matrix products are tiny, and BLAS threads only wait on each
    # other there (5x slower per step on a busy 2-core machine).
    with one_blas_thread():
        run = run_episode(seed, network_policy(nets, kind, logit_offset), render=True,
                          max_steps=max_steps, on_frame=count)
    return {**run, "class_counts": counts.tolist()}


def drive(paths, episodes: int = 10, seed: int = 0, max_steps: int = MAX_STEPS,
          workers: int = 2, progress=_no_progress, logit_offset=None) -> dict:
    """The checkpoint's car network, or the family ensemble of several (``paths``: checkpoints,
    search, backprop or chains folders, as ``ensemble.member_paths``), drives ``episodes``
    episodes (seeds ``seed, seed+1, ...``), its decision adjusted by ``logit_offset`` if given
    (:func:`adjusted_class`). Returns mean / min / max return, laps finished and each episode's
    record."""
    members = ensemble.member_paths([paths] if isinstance(paths, (str, os.PathLike)) else paths)
    nets, kind = _networks(members)             # a clear error before any process starts
    check_seed(seed)
    if episodes < 1:
        raise MinisenseError(f"episodes must be >= 1, got {episodes}")
    if not 1 <= max_steps <= MAX_STEPS:
        raise MinisenseError(f"max steps must be in 1..{MAX_STEPS}, got {max_steps}")
    check_logit_offset(logit_offset)
    offset = None if logit_offset is None else [float(v) for v in logit_offset]
    jobs = [(members, seed + i, max_steps, offset) for i in range(episodes)]
    runs = _map(_drive_episode, jobs, workers, progress, "driving")
    return {"checkpoint": str(checkpoint_paths(members[0])[0]),
            "members": [str(checkpoint_paths(m)[0]) for m in members],
            "commensurate": ensemble.commensurate(nets),
            "dataset": load(members[0])[1].get("dataset"), "frame_kind": kind,
            "seeds": [seed + i for i in range(episodes)], "max_steps": max_steps,
            **({} if offset is None else {"logit_offset": offset}), **summarize(runs)}


def write_gif(paths, seed: int, gif, max_steps: int = MAX_STEPS, every: int = 2,
              scale: int = 2, logit_offset=None) -> dict:
    """Drive one episode with the checkpoint's network (or an ensemble, as :func:`drive`, with
    its ``logit_offset``) and
    write every ``every``-th step to the
    animated GIF ``gif`` (real-time speed): the 96x96 observation beside the 32x32 network
    input, both ``scale`` * 96 pixels wide, under a line with the step, class and return.
    Pillow (a matplotlib dependency) draws the frames directly: no figure per frame."""
    from PIL import Image, ImageDraw

    check_seed(seed)
    check_logit_offset(logit_offset)
    nets, kind = _networks(ensemble.member_paths(
        [paths] if isinstance(paths, (str, os.PathLike)) else paths))
    size, gap, caption = scale * 96, 4, 16
    frames = []

    def keep(step, observation, cls, env):
        if step % every:
            return
        view = np.kron(observation, np.ones((scale, scale, 1), np.uint8))
        small = np.kron(network_frame(env, observation, kind),
                        np.ones((size // FRAME_SIZE,) * 2, np.uint8))
        canvas = np.zeros((caption + size, 2 * size + gap, 3), np.uint8)
        canvas[caption:, :size] = view
        canvas[caption:, size + gap:] = small[..., None]
        image = Image.fromarray(canvas)
        ImageDraw.Draw(image).text((4, 2), f"seed {seed} step {step:4d}  {CLASSES[cls]:<12}"
                                   f"  network input 32x32", fill=(255, 255, 255))
        frames.append(image.convert("P", palette=Image.ADAPTIVE))

    with one_blas_thread():
        run = run_episode(seed, network_policy(nets, kind, logit_offset), render=True,
                          max_steps=max_steps, on_frame=keep)
    if not frames:
        raise MinisenseError(f"the drive of seed {seed} ended before any frame went into {gif}; "
                             "give a smaller --gif-every or more --max-steps")
    with files.atomic_file(gif) as f:                            # a whole GIF or none
        frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                       duration=int(1000 * every / 50))          # CarRacing runs at 50 FPS
    return {**run, "gif": str(gif), "gif_frames": len(frames)}
