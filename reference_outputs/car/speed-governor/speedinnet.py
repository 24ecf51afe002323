"""Does the car network keep the speed its frames hold? Linear read-outs of the speed (as
speedbar.py: pursuit-v3 on tracks 5000-5002 to fit, 5003-5004 to test; ridge) from the network's
layers: layer1.0's and layer2.0's sums after their HardTanh, and fc1's (what fc2 sees). The frames
are of the kind the network was trained on (grey, or speedometer: minisense.data)."""
import sys

import numpy as np

from sklearn.linear_model import RidgeCV

from minisense import car
from minisense.checkpoint import load
from minisense.data import frame_kind_in
from minisense.expert import expert_config

net, meta = load(sys.argv[1], architecture="car")
kind = frame_kind_in(meta, sys.argv[1])
pol = car.expert_policy(expert_config("pursuit-v3"))


def run(seed):
    out = []

    def policy(env, obs):
        out.append((float(np.hypot(*env.unwrapped.car.hull.linearVelocity)),
                    car.network_frame(env, obs, kind)))
        return pol(env, obs)
    car.run_episode(seed, policy)
    return out[60:]


tracks = [run(s) for s in range(5000, 5005)]
ys = [np.array([r[0] for r in t]) for t in tracks]
frames = [np.stack([r[1] for r in t]) for t in tracks]


def readout(name, features):
    Xtr, ytr = np.vstack(features[:3]).astype(float), np.concatenate(ys[:3])
    Xte, yte = np.vstack(features[3:]).astype(float), np.concatenate(ys[3:])
    # ridge, its strength chosen on the fitting tracks alone (generalised cross-validation):
    # the conv layers have more features than there are frames
    scale = np.maximum(Xtr.std(axis=0), 1e-9)
    model = RidgeCV(alphas=np.logspace(-3, 5, 17)).fit(Xtr / scale, ytr)
    err = model.predict(Xte / scale) - yte
    print(f"{name}: {Xtr.shape[1]} features, test RMSE {np.sqrt((err ** 2).mean()):.2f} units/s, "
          f"alpha {model.alpha_:g} "
          f"(a constant {yte.std():.2f})")


readout("frame, bottom 4 rows", [f[:, 28:, :].reshape(len(f), -1) for f in frames])
for layer in ("layer1.0", "layer2.0", "fc1"):
    t = net.thresholds.get(layer)
    feats = []
    for f in frames:
        z = net.exact_logits(f, stop_after=layer)
        feats.append(np.clip(z, -t, t).reshape(len(f), -1))
    readout(f"{layer} after HardTanh (T={t})", feats)
    if layer != "fc1":
        readout(f"{layer}, its bottom rows only", [x.reshape(len(x), -1) for x in [
            np.clip(net.exact_logits(f, stop_after=layer), -t, t)[:, -3:].reshape(len(f), -1)
            for f in frames]])
