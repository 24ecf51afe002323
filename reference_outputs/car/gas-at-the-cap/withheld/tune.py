"""Plan J step 1: pursuit-v3-cap60 with a larger gas_bonus, 3-class returns on validation tracks."""
import json
import sys
import time
from minisense.car import run_episode, expert_policy, summarize
from minisense.expert import expert_config

bonus, seed, n = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
config = expert_config("pursuit-v3-cap60", gas_bonus=bonus)
t = time.time()
runs = [run_episode(s, expert_policy(config), render=False) for s in range(seed, seed + n)]
out = summarize(runs)
out.pop("episodes")
out.update(gas_bonus=bonus, seeds=[seed, seed + n - 1], seconds=time.time() - t)
json.dump(out, open(f"tune-gb{bonus}-s{seed}.json", "w"), indent=1)
print(bonus, seed, round(out["mean_return"], 1), round(out["sem_return"], 1), out["laps"],
      out["below_solved"], out.get("off_road_episodes"), round(out["seconds"]))
