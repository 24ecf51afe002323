"""How well do the network's 32x32 frames show the car's speed? Drive pursuit-v3 on a few tracks,
keep (speed, preprocessed frame); fit speed from the bottom 4 rows by least squares on 3 tracks,
test on 2 others; report the residual spread, and the same from the 96x96 grey bottom 12 rows."""
import numpy as np
from minisense import car
from minisense.data import preprocess, GREY
from minisense.expert import expert_config

cfg = expert_config("pursuit-v3")
pol = car.expert_policy(cfg)
def run(seed):
    out = []
    def policy(env, obs):
        a, c = pol(env, obs)
        speed = float(np.hypot(*env.unwrapped.car.hull.linearVelocity))
        out.append((speed, preprocess(obs), (np.asarray(obs, float) @ GREY)))
        return a, c
    car.run_episode(seed, policy)
    return out
tracks = [run(s) for s in range(5000, 5005)]     # frames from step 60 on: past the zoom
for name, get in (("32x32 bottom 4 rows", lambda s, f, g: f[28:, :].ravel()),
                  ("96x96 grey bottom 12 rows", lambda s, f, g: g[84:, :].ravel())):
    Xs = [np.array([get(*r) for r in t[60:]], float) for t in tracks]
    ys = [np.array([r[0] for r in t[60:]]) for t in tracks]
    Xtr, ytr = np.vstack(Xs[:3]), np.concatenate(ys[:3])
    Xte, yte = np.vstack(Xs[3:]), np.concatenate(ys[3:])
    A = np.c_[Xtr, np.ones(len(Xtr))]
    w, *_ = np.linalg.lstsq(A, ytr, rcond=1e-6)
    pred = np.c_[Xte, np.ones(len(Xte))] @ w
    err = pred - yte
    near = (yte > 55) & (yte < 70)
    print(f"{name}: test RMSE {np.sqrt((err**2).mean()):.2f} units/s over {len(yte)} frames; "
          f"at 55-70 units/s {np.sqrt((err[near]**2).mean()):.2f} ({near.sum()} frames); "
          f"speed range {yte.min():.1f}-{yte.max():.1f}; a constant: RMSE {yte.std():.2f}, "
          f"at 55-70 {yte[near].std():.2f}")
    # the bar alone: the speed indicator's 32x32 cells (columns 3-5), bottom 4 rows
    if name.startswith("32"):
        B = [np.array([r[1][28:, 3:6].ravel() for r in t[60:]], float) for t in tracks]
        A2 = np.c_[np.vstack(B[:3]), np.ones(len(ytr))]
        w2, *_ = np.linalg.lstsq(A2, ytr, rcond=1e-6)
        e2 = np.c_[np.vstack(B[3:]), np.ones(len(yte))] @ w2 - yte
        print(f"  columns 3-5 only: RMSE {np.sqrt((e2**2).mean()):.2f}, at 55-70 {np.sqrt((e2[near]**2).mean()):.2f}")
