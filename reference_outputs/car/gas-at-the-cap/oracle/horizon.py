"""Plan O step 1: pursuit-v3-cap60 with a shorter horizon (waypoints of track ahead that set the
allowed speed), 3-class returns on the validation tracks. Usage: python horizon.py H FIRST N."""
import json
import sys
import time

from minisense.car import expert_policy, run_episode, summarize
from minisense.expert import expert_config

horizon, seed, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
config = expert_config("pursuit-v3-cap60", horizon=horizon)
t = time.time()
runs = [run_episode(s, expert_policy(config), render=False) for s in range(seed, seed + n)]
out = {"horizon": horizon, "seeds": list(range(seed, seed + n)), **summarize(runs),
       "seconds": time.time() - t}
json.dump(out, open(f"horizon-h{horizon}-s{seed}.json", "w"), indent=1)
print(f"horizon {horizon} seeds {seed}-{seed + n - 1}: {out['mean_return']:.1f} +- "
      f"{out['sem_return']:.1f}, laps {out['laps']}, below 900 {out['below_solved']}, off the road "
      f"{out['off_road_episodes']}")
