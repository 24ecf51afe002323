"""Drive a network trained on wheelrow.py's frames (it sees row 29 drawn from the wheel angle):
python wheeldrive.py CHECKPOINT FIRST_SEED EPISODES OUT.json (two processes)."""
import json
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from wheelrow import wheel_angle, wheel_row

from minisense import car, ensemble
from minisense.checkpoint import load

PATH, FIRST, COUNT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def one(seed):
    net, _ = load(PATH, architecture="car")

    def policy(env, observation):
        frame = car.network_frame(env, observation, "speedometer-fine")
        frame[29] = wheel_row(wheel_angle(env))
        cls = int(ensemble.combine(ensemble.member_logits([net], frame[None]))["sum"][0])
        return car.ACTIONS[cls], cls
    return car.run_episode(seed, policy)


if __name__ == "__main__":
    with ProcessPoolExecutor(2) as pool:
        runs = list(pool.map(one, range(FIRST, FIRST + COUNT)))
    r = np.array([x["return"] for x in runs])
    print(f"mean {r.mean():.1f} +- {r.std(ddof=1) / np.sqrt(len(r)):.1f}, laps "
          f"{sum(x['lap'] for x in runs)}, below 900 {np.sum(r < 900)}, min {r.min():.1f}")
    json.dump({"checkpoint": PATH, "seeds": list(range(FIRST, FIRST + COUNT)),
               "returns": r.tolist()}, open(sys.argv[4], "w"))
