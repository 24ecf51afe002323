"""Fixtures shared by the test modules: the command line run in this process and the checks of
its output, one tiny trained run, the digits dataset, and the independent oracles several modules
compare against (a plain integer loop, a direct convolution, finite differences).

A test module never imports another one, nor this file (tests/test_imports.py checks): what two
modules share is a fixture here, or a plain constant in helpers.py. A fixture holding a function
is session-wide, so module-wide fixtures and Hypothesis tests may use it.
"""

import json
import pathlib
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import PNG_MAGIC, TINY

from minisense.data import load_dataset
from minisense.network import binarize, build_network
from minisense_cli.main import main

# -- the command line ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def run():
    """run(*args, env=None) -> click Result of ``minisense *args`` in this process."""
    def invoke(*args, env=None):
        return CliRunner().invoke(main, [str(a) for a in args], env=env)
    return invoke


@pytest.fixture(scope="session")
def assert_ok():
    """assert_ok(result) -> result, which must have exited 0 (else: its output and exception)."""
    def check(result):
        assert result.exit_code == 0, result.output + repr(result.exception)
        return result
    return check


@pytest.fixture(scope="session")
def assert_one_line_error():
    """assert_one_line_error(result) -> its line: exit code 1 or 2 through click (SystemExit, no
    crash), no traceback, and the whole output one line ``Error: ...``."""
    def check(result):
        assert result.exit_code in (1, 2), result.output + repr(result.exception)
        assert isinstance(result.exception, SystemExit), repr(result.exception)
        assert "Traceback" not in result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
        return lines[0]
    return check


@pytest.fixture(scope="session")
def quick(run, assert_ok):
    """quick(out, figure, *extra) -> the figure's JSON record: ``minisense reproduce figure
    --quick --out out *extra``, after checking its PNG, summary line, command and seed."""
    def reproduce(out, figure, *extra):
        result = assert_ok(run("reproduce", figure, "--quick", "--out", out, *extra))
        folder = out / figure
        record = json.loads((folder / f"{figure}.json").read_text())
        assert (folder / record["png"]).read_bytes()[:8] == PNG_MAGIC
        assert record["summary"] in result.output and record["quick"] is True
        assert record["command"].startswith(f"minisense reproduce {figure} --quick --seed 0")
        assert record["seed"] == 0 and record["results"]
        return record
    return reproduce


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, run, assert_ok):
    """(folder, output) of one tiny 'minisense train' (helpers.TINY), once per module: training
    is the slow part."""
    out = tmp_path_factory.mktemp("trained") / "run"
    return out, assert_ok(run("train", *TINY, "--out", out)).output


@pytest.fixture(scope="module")
def trained(trained_run):
    """The run folder of ``trained_run``."""
    return trained_run[0]


@pytest.fixture
def trained_copy(trained, tmp_path):
    """A private copy of the trained run folder, for tests that damage it."""
    return pathlib.Path(shutil.copytree(trained, tmp_path / "run"))


# -- data ----------------------------------------------------------------------------------------


@pytest.fixture
def no_other_data(monkeypatch, tmp_path):
    """Only --data-dir can hold a recording: no $MINISENSE_DATA, an empty cache."""
    monkeypatch.delenv("MINISENSE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's digits as minisense loads them (train, validation, test)."""
    return load_dataset("digits")


@pytest.fixture(scope="session")
def stroke_images():
    """stroke_images(shape, count, rng, noise=0) -> uint8 images of ``shape``, MNIST-like: a dark
    background (noise up to ``noise``) and a few bright strokes."""
    def make(shape, count, rng, noise=0):
        images = rng.integers(0, noise + 1, (count, *shape)).astype(np.uint8)
        for image in images:
            for _ in range(3):
                y, x = rng.integers(4, shape[0] - 4, 2)
                dy, dx = rng.integers(-1, 2, 2)
                for step in range(8):
                    yy, xx = np.clip([y + step * dy, x + step * dx], 0, np.array(shape) - 2)
                    image[yy:yy + 2, xx:xx + 2] = rng.integers(128, 256)
        return images
    return make


# -- networks and their integer oracle -----------------------------------------------------------


@pytest.fixture(scope="session")
def sparse_binary():
    """sparse_binary(architecture, seed, sparsity=0.8) -> a binarized network of random weights,
    each kept with probability 1 - sparsity."""
    def make(architecture, seed, sparsity=0.8):
        net = build_network(architecture, seed)
        rng = np.random.default_rng(seed)
        for layer in net.weighted.values():
            layer.mask = (rng.random(layer.weight.shape) >= sparsity).astype(np.float32)
            layer.weight *= layer.mask
        binarize(net)
        return net
    return make


@pytest.fixture(scope="session")
def integer_oracle():
    """integer_oracle(net, image) -> the logits of one image: int64 arithmetic written out layer
    by layer with direct convolution sums."""
    def logits(net, image):
        w = net.ternary_weights()
        h = image.astype(np.int64)[:, :, None]
        limit = None
        for m in net.modules:
            kind = type(m).__name__
            if kind == "Conv2d":
                p, k = m.padding, m.kernel
                hp = np.pad(h, ((p, p), (p, p), (0, 0)))
                ho, wo = hp.shape[0] - k + 1, hp.shape[1] - k + 1
                out = np.zeros((ho, wo, w[m.name].shape[0]), dtype=np.int64)
                for a in range(ho):
                    for b in range(wo):
                        patch = hp[a:a + k, b:b + k, :].transpose(2, 0, 1)
                        out[a, b] = (w[m.name] * patch[None]).sum(axis=(1, 2, 3))
                h, limit = out, net.thresholds.get(m.name)
            elif kind == "MaxPool2d":
                k = m.k
                hh, ww = h.shape[0] // k, h.shape[1] // k
                h = h[:hh * k, :ww * k].reshape(hh, k, ww, k, -1).max(axis=(1, 3))
            elif kind == "HardTanh":
                h = np.clip(h, -limit, limit)
            elif kind == "Flatten":
                h = h.transpose(2, 0, 1).ravel()
            else:
                h, limit = w[m.name].astype(np.int64) @ h, net.thresholds.get(m.name)
        return h
    return logits


# -- layers: the definition of a convolution, finite differences ---------------------------------


@pytest.fixture(scope="session")
def direct_conv():
    """direct_conv(x, weight, padding) -> y of shape (n, ho, wo, out), by the definition:
    y[n, a, b, o] = sum_{i, j, c} xpad[n, a+i, b+j, c] * weight[o, c, i, j]."""
    def convolve(x, weight, padding):
        n, h, w, c = x.shape
        out, _, kh, kw = weight.shape
        xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
        ho, wo = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
        y = np.zeros((n, ho, wo, out))
        for b in range(n):
            for a in range(ho):
                for bb in range(wo):
                    for o in range(out):
                        y[b, a, bb, o] = sum(xp[b, a + i, bb + j, ch] * weight[o, ch, i, j]
                                             for i in range(kh) for j in range(kw)
                                             for ch in range(c))
        return y
    return convolve


@pytest.fixture(scope="session")
def numeric_grad():
    """numeric_grad(f, array, eps=1e-6) -> central finite differences of the scalar f() with
    respect to every entry of array (changed in place, then restored)."""
    def grad(f, array, eps=1e-6):
        g = np.zeros_like(array)
        it = np.nditer(array, flags=["multi_index"])
        for _ in it:
            i = it.multi_index
            old = array[i]
            array[i] = old + eps
            plus = f()
            array[i] = old - eps
            minus = f()
            array[i] = old
            g[i] = (plus - minus) / (2 * eps)
        return g
    return grad


@pytest.fixture(scope="session")
def check_layer_grads(numeric_grad):
    """check_layer_grads(layer, x, rng, check_weight=True): backward() against finite
    differences of the loss sum(y * r) for a random r, for x and (if asked) the weight."""
    def check(layer, x, rng, check_weight=True):
        r = rng.normal(size=layer.forward(x).shape)

        def loss():
            return float((layer.forward(x) * r).sum())

        layer.forward(x)
        dx = layer.backward(r)
        np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-5, atol=1e-7)
        if check_weight:
            layer.forward(x)
            layer.backward(r)
            np.testing.assert_allclose(layer.grad.copy(), numeric_grad(loss, layer.weight),
                                       rtol=1e-5, atol=1e-7)
    return check
