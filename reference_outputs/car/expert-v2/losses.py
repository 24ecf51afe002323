"""Where the expert loses: one line per episode, from the simulator's state every step.

    python losses.py EXPERT SEED[,SEED...]

return, steps, lap finished, tiles visited / the track's tiles, mean / top speed, steps with all
four wheels off the road, steps with any wheel off it, steps driving more than 90 degrees from
the track's direction (a spin), the first step with all four wheels off the road and the
waypoint there.
"""
import math
import sys

import numpy as np

from minisense import car
from minisense.expert import ACTIONS, _wrap, expert_config, label


def episode(seed: int, config) -> dict:
    env = car.make_env(render=False)
    env.reset(seed=seed)
    u = env.unwrapped
    track = np.asarray(u.track)
    direction = np.arctan2(*(np.roll(track[:, 2:], -1, 0) - track[:, 2:]).T[::-1])
    speeds, off, spin, near = [], [], [], []
    total, step, lap = 0.0, 0, False
    while step < car.MAX_STEPS:
        cls = label(env, config)
        hull = u.car.hull
        i = int(np.argmin(((track[:, 2:] - np.array(hull.position)) ** 2).sum(axis=1)))
        forward = hull.GetWorldVector((0, 1))
        near.append(i)
        speeds.append(float(np.hypot(*hull.linearVelocity)))
        off.append(sum(len(w.tiles) == 0 for w in u.car.wheels))
        spin.append(abs(_wrap(math.atan2(forward[1], forward[0]) - direction[i])) > math.pi / 2)
        _, reward, terminated, truncated, info = env.step(ACTIONS[cls])
        total, step = total + reward, step + 1
        if terminated or truncated:
            lap = bool(info.get("lap_finished", False))
            break
    tiles = int(u.tile_visited_count)
    env.close()
    off = np.array(off)
    first = np.flatnonzero(off == 4)
    return {"seed": seed, "return": total, "steps": step, "lap": lap, "tiles": tiles,
            "track_tiles": len(track), "mean_speed": float(np.mean(speeds)),
            "top_speed": float(np.max(speeds)), "off_road_steps": int((off == 4).sum()),
            "wheel_off_steps": int((off > 0).sum()), "spin_steps": int(np.sum(spin)),
            "first_off_step": int(first[0]) if len(first) else None,
            "first_off_waypoint": int(near[first[0]]) if len(first) else None}


if __name__ == "__main__":
    config = expert_config(sys.argv[1])
    print(f"# python losses.py {sys.argv[1]} {sys.argv[2]}")
    print("seed   return steps lap tiles/track  speed mean/top  off-road wheel-off spin  "
          "first off (step @ waypoint)")
    for seed in map(int, sys.argv[2].split(",")):
        e = episode(seed, config)
        where = (f"{e['first_off_step']} @ {e['first_off_waypoint']}"
                 if e["first_off_step"] is not None else "-")
        print(f"{seed} {e['return']:7.1f} {e['steps']:5d} {int(e['lap']):3d} {e['tiles']:5d}/"
              f"{e['track_tiles']:<5d} {e['mean_speed']:6.1f}/{e['top_speed']:5.1f} "
              f"{e['off_road_steps']:9d} {e['wheel_off_steps']:9d} {e['spin_steps']:4d}  {where}",
              flush=True)
