"""The textbook layers against independent oracles: a direct nested-loop convolution and
max-pooling, central finite differences in float64, and hand computations."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minisense.textbook.layers import (
    SGD,
    Conv2d,
    Flatten,
    HardTanh,
    Linear,
    MaxPool2d,
    col2im,
    conv_weight_matrix,
    im2col,
    max_pool,
    max_pool_backward,
    softmax_cross_entropy,
)


def direct_max_pool(x, k):
    """Window by window: the maximum, and the offset i*k + j of the first input that equals it."""
    n, h, w, c = x.shape
    y = np.zeros((n, h // k, w // k, c))
    winners = np.zeros(y.shape, dtype=int)
    for b in range(n):
        for a in range(h // k):
            for bb in range(w // k):
                for ch in range(c):
                    window = [x[b, k * a + i, k * bb + j, ch] for i in range(k) for j in range(k)]
                    y[b, a, bb, ch] = max(window)
                    winners[b, a, bb, ch] = window.index(max(window))
    return y, winners


# -- im2col / col2im ----------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 2), h=st.integers(3, 7), w=st.integers(3, 7), c=st.integers(1, 3),
       out=st.integers(1, 3), k=st.integers(1, 3), padding=st.integers(0, 2),
       seed=st.integers(0, 2**31 - 1))
def test_im2col_convolution_equals_direct_loop(n, h, w, c, out, k, padding, seed, direct_conv):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, h, w, c))
    weight = rng.normal(size=(out, c, k, k))
    ho, wo = h + 2 * padding - k + 1, w + 2 * padding - k + 1
    y = (im2col(x, k, k, padding) @ conv_weight_matrix(weight)).reshape(n, ho, wo, out)
    np.testing.assert_allclose(y, direct_conv(x, weight, padding), rtol=1e-10, atol=1e-10)


def test_im2col_row_and_column_are_the_documented_indices():
    x = np.random.default_rng(0).normal(size=(2, 4, 5, 3))
    kh, kw, p = 2, 3, 1
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    ho, wo = 4 + 2 * p - kh + 1, 5 + 2 * p - kw + 1
    cols = im2col(x, kh, kw, p)
    assert cols.shape == (2 * ho * wo, kh * kw * 3)
    for b, y0, x0, i, j, ch in np.ndindex(2, ho, wo, kh, kw, 3):
        assert cols[b * ho * wo + y0 * wo + x0, (i * kw + j) * 3 + ch] == xp[b, y0 + i, x0 + j, ch]


@settings(max_examples=25, deadline=None)
@given(h=st.integers(3, 7), w=st.integers(3, 7), c=st.integers(1, 3), kh=st.integers(1, 3),
       kw=st.integers(1, 3), padding=st.integers(0, 2), seed=st.integers(0, 2**31 - 1))
def test_col2im_is_the_adjoint_of_im2col(h, w, c, kh, kw, padding, seed):
    """<im2col(x), d> == <x, col2im(d)> for every x and d."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, h, w, c))
    cols = im2col(x, kh, kw, padding)
    d = rng.normal(size=cols.shape)
    assert np.isclose(np.vdot(cols, d), np.vdot(x, col2im(d, x.shape, kh, kw, padding)),
                      rtol=1e-10, atol=1e-10)


# -- max-pooling --------------------------------------------------------------------------------

@pytest.mark.parametrize("k,h,w", [(2, 6, 6), (2, 7, 5), (3, 9, 10), (3, 8, 8)])
def test_max_pool_equals_direct_loop_and_drops_the_ragged_edge(k, h, w):
    rng = np.random.default_rng(k * h)
    x = rng.integers(-3, 4, size=(2, h, w, 3)).astype(float)     # many ties
    y, winners = max_pool(x, k)
    y_direct, winners_direct = direct_max_pool(x, k)
    assert winners.dtype == np.uint8
    np.testing.assert_array_equal(y, y_direct)
    np.testing.assert_array_equal(winners, winners_direct)
    dy = rng.normal(size=y.shape)
    dx = max_pool_backward(dy, winners, x.shape, k)
    assert not dx[:, h // k * k:].any() and not dx[:, :, w // k * k:].any()
    assert np.isclose(dx.sum(), dy.sum())                        # each gradient routed once


def test_max_pool_routes_each_window_to_its_first_maximum():
    x = np.zeros((1, 4, 4, 1))
    x[0, 1, 1, 0] = 5.0
    x[0, 2:, 2:, 0] = 3.0                       # a four-way tie: only the first wins
    y, winners = max_pool(x, 2)
    assert y[0, :, :, 0].tolist() == [[5.0, 0.0], [0.0, 3.0]]
    assert winners[0, :, :, 0].tolist() == [[3, 0], [0, 0]]
    routed = max_pool_backward(np.ones_like(y), winners, x.shape, 2)[0, :, :, 0]
    assert routed.reshape(2, 2, 2, 2).sum(axis=(1, 3)).tolist() == [[1, 1], [1, 1]]   # one each
    assert routed[1, 1] == 1 and routed[2, 2] == 1 and routed[3, 3] == 0


@pytest.mark.parametrize("k,h", [(2, 6), (3, 9), (2, 7)])
def test_maxpool_gradient_matches_finite_differences(k, h, check_layer_grads):
    rng = np.random.default_rng(k)
    x = rng.normal(size=(2, h, h, 3))           # distinct values: no ties
    check_layer_grads(MaxPool2d(k), x, rng, check_weight=False)


# -- weighted layers ----------------------------------------------------------------------------

def make_conv(rng, padding=1):
    return Conv2d("c", 2, 3, 3, padding, rng, dtype=np.float64), (2, 5, 6, 2)


def make_linear(rng, padding=None):
    return Linear("fc", 7, 4, rng, dtype=np.float64), (3, 7)


@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("gain", [1.0, 0.37])
def test_conv2d_gradients_match_finite_differences(padding, gain, check_layer_grads):
    rng = np.random.default_rng(padding)
    layer, shape = make_conv(rng, padding)
    layer.gain = gain
    check_layer_grads(layer, rng.normal(size=shape), rng)


def test_conv2d_forward_equals_direct_loop_times_gain(direct_conv):
    rng = np.random.default_rng(12)
    layer, shape = make_conv(rng, 2)
    layer.gain = 0.8
    x = rng.normal(size=shape)
    np.testing.assert_allclose(layer.forward(x), 0.8 * direct_conv(x, layer.weight, 2),
                               rtol=1e-12, atol=1e-12)


def test_first_conv2d_returns_no_input_gradient():
    rng = np.random.default_rng(13)
    layer, shape = make_conv(rng)
    layer.needs_input_grad = False
    x = rng.normal(size=shape)
    assert layer.backward(np.ones_like(layer.forward(x))) is None
    assert layer.grad.any()


@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_linear_gradients_match_finite_differences(gain, check_layer_grads):
    rng = np.random.default_rng(1)
    layer, shape = make_linear(rng)
    layer.gain = gain
    check_layer_grads(layer, rng.normal(size=shape), rng)


@pytest.mark.parametrize("make", [make_conv, make_linear])
@pytest.mark.parametrize("ternary", [False, True])
def test_learned_gain_gradient_matches_finite_differences(make, ternary, numeric_grad):
    rng = np.random.default_rng(7)
    layer, shape = make(rng)
    layer.mask = (rng.random(layer.weight.shape) < 0.6).astype(np.float64)
    layer.ternary, layer.gain, layer.learn_gain = ternary, 0.7, True
    x = rng.normal(size=shape)
    r = rng.normal(size=layer.forward(x).shape)
    layer.forward(x)
    layer.backward(r)
    gain = np.array([0.7])

    def loss():
        layer.gain = float(gain[0])
        return float((layer.forward(x) * r).sum())

    assert np.isclose(layer.gain_grad, numeric_grad(loss, gain)[0], rtol=1e-6)


@pytest.mark.parametrize("make", [make_conv, make_linear])
def test_ternary_latent_weight_gets_the_gradient_of_the_real_weight(make, numeric_grad):
    """The straight-through estimator: the latent weight's grad is dloss/dq for the real weight
    q = gain * mask * sign(w), masked; the input gradient is the ternary layer's own."""
    rng = np.random.default_rng(3)
    layer, shape = make(rng)
    mask = (rng.random(layer.weight.shape) < 0.6).astype(np.float64)
    layer.mask, layer.ternary, layer.gain = mask, True, 0.45
    assert set(np.unique(layer.effective_weight())) <= {-1.0, 0.0, 1.0}
    assert np.array_equal(layer.effective_weight() == 0, mask == 0)
    real, _ = make(np.random.default_rng(0))
    real.weight = 0.45 * layer.effective_weight()                # a float layer, gain 1
    x = rng.normal(size=shape)
    r = rng.normal(size=layer.forward(x).shape)
    np.testing.assert_allclose(layer.forward(x), real.forward(x), rtol=1e-12, atol=1e-12)
    dx = layer.backward(r)
    dq = numeric_grad(lambda: float((real.forward(x) * r).sum()), real.weight)
    np.testing.assert_allclose(layer.grad, dq * mask, rtol=1e-5, atol=1e-7)
    assert np.all(layer.grad[mask == 0] == 0)
    np.testing.assert_allclose(dx, numeric_grad(lambda: float((layer.forward(x) * r).sum()), x),
                               rtol=1e-5, atol=1e-7)


def test_ternary_latent_zero_counts_as_plus_one():
    layer = Linear("fc", 3, 1, np.random.default_rng(0), dtype=np.float64)
    layer.weight[:] = [[0.0, -0.2, 0.3]]
    layer.ternary = True
    assert layer.effective_weight().tolist() == [[1.0, -1.0, 1.0]]


# -- activation, flatten, loss ------------------------------------------------------------------

def test_hardtanh_gradient_matches_finite_differences(check_layer_grads):
    rng = np.random.default_rng(3)
    x = rng.uniform(-2, 2, size=(4, 5))
    x[np.abs(np.abs(x) - 1) < 1e-3] = 0.5       # keep away from the kinks
    check_layer_grads(HardTanh(), x, rng, check_weight=False)
    assert HardTanh().forward(np.array([-3.0, -0.5, 0.2, 7.0])).tolist() == [-1, -0.5, 0.2, 1]


def test_flatten_is_channel_major_and_invertible(check_layer_grads):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 3, 4, 5))
    y = Flatten().forward(x)
    assert np.array_equal(y, x.transpose(0, 3, 1, 2).reshape(2, -1))
    check_layer_grads(Flatten(), x, rng, check_weight=False)


def test_softmax_cross_entropy_gradient_matches_finite_differences(numeric_grad):
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(4, 10))
    labels = rng.integers(0, 10, size=4)
    loss, d = softmax_cross_entropy(logits, labels)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert np.isclose(loss, -np.log(p[np.arange(4), labels]).mean())
    np.testing.assert_allclose(d, numeric_grad(lambda: softmax_cross_entropy(logits, labels)[0],
                                               logits), rtol=1e-6, atol=1e-8)


# -- SGD ----------------------------------------------------------------------------------------

def test_sgd_with_weight_decay_and_lsq_gain_matches_hand_computation():
    rng = np.random.default_rng(6)
    layer = Linear("fc", 3, 2, rng, dtype=np.float64)
    layer.mask = np.array([[1, 0, 1], [1, 1, 0]], dtype=np.float64)
    layer.weight *= layer.mask
    layer.learn_gain, layer.gain, layer.gain_grad = True, 0.5, 0.8
    w0, g = layer.weight.copy(), rng.normal(size=(2, 3)) * layer.mask
    layer.grad = g
    SGD([layer], lr=0.1, momentum=0.9, weight_decay=0.01, lsq_gains=True).step()
    np.testing.assert_allclose(layer.weight, (w0 - 0.1 * (g + 0.01 * w0)) * layer.mask)
    assert np.isclose(layer.gain, 0.5 - 0.1 * 0.8 / 2.0)           # N = 4 kept weights
    assert type(layer.gain) is float
