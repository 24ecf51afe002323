"""Drive a network trained on one of rows.py's recordings; it sees its frames drawn as there.
Usage: python drive.py {oracle,oracle-allowed,fovea} ROW CHECKPOINT FIRST_SEED EPISODES OUT.json (two processes;
ROW: the fovea's observation row, rows.py's R; ignored by the oracles). Writes car.summarize's
record, which `minisense car compare` reads."""
import json
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from rows import EXPERT, FOVEA, wheel_angle, wheel_row

from minisense import car, ensemble
from minisense.checkpoint import load
from minisense.data import GREY, SPEEDOMETER_FINE_RANGE, speedometer
from minisense.expert import plan

VARIANT, ROW, PATH = sys.argv[1], int(sys.argv[2]), sys.argv[3]
FIRST, COUNT = int(sys.argv[4]), int(sys.argv[5])


def frame(env, observation):
    f = car.network_frame(env, observation, "speedometer-fine")
    if VARIANT.startswith("oracle"):
        target, _, allowed = plan(env, EXPERT)
        f[28] = wheel_row(float(np.clip(target, -0.4, 0.4)))
        f[29] = wheel_row(wheel_angle(env))
        if VARIANT == "oracle-allowed":
            f[0] = speedometer(allowed, SPEEDOMETER_FINE_RANGE)
    else:
        f[28] = np.rint(observation[ROW, FOVEA].astype(np.float64) @ GREY).astype(np.uint8)
    return f


def one(seed):
    net, _ = load(PATH, architecture="car")

    def policy(env, observation):
        x = frame(env, observation)[None]
        cls = int(ensemble.combine(ensemble.member_logits([net], x))["sum"][0])
        return car.ACTIONS[cls], cls
    return car.run_episode(seed, policy)


if __name__ == "__main__":
    assert VARIANT in ("oracle", "oracle-allowed", "fovea")
    with ProcessPoolExecutor(2) as pool:
        runs = list(pool.map(one, range(FIRST, FIRST + COUNT)))
    result = {"checkpoint": PATH, "variant": VARIANT, "row": ROW,
              "seeds": list(range(FIRST, FIRST + COUNT)), **car.summarize(runs)}
    print(f"{VARIANT} {PATH}: mean {result['mean_return']:.1f} +- {result['sem_return']:.1f}, "
          f"laps {result['laps']}, below 900 {result['below_solved']}, min "
          f"{result['min_return']:.1f}, off the road {result['off_road_episodes']}")
    json.dump(result, open(sys.argv[6], "w"), indent=1)
