"""Plan O step 2: the fine recording (40 episodes, seed 0) by pursuit-v3-cap60 with a shorter
horizon. Usage: python record_h.py H OUT."""
import sys

from minisense import car
from minisense.expert import expert_config

horizon, out = int(sys.argv[1]), sys.argv[2]
meta = car.record(40, 0, out, config=expert_config("pursuit-v3-cap60", horizon=horizon),
                  frame_kind="speedometer-fine", command=sys.argv)
print(f"{meta['frames']} frames, expert mean {meta['expert_mean_return']:.1f}, laps "
      f"{meta['expert_laps']}: {out}")
