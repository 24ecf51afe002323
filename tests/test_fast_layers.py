"""Fast layers against independent oracles (finite differences, a direct nested-loop convolution)
and against their textbook twins in ``minisense.textbook.layers``."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minisense.fast import layers
from minisense.fast.layers import (
    SGD,
    Conv2d,
    Flatten,
    HardTanh,
    Linear,
    MaxPool2d,
    col2im,
    conv_input_grad,
    conv_weight_matrix,
    im2col,
    max_pool,
    max_pool_backward,
    softmax_cross_entropy,
    ungroup,
    window_offsets,
)
from minisense.textbook import layers as textbook


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 2), h=st.integers(3, 7), w=st.integers(3, 7), c=st.integers(1, 3),
       out=st.integers(1, 3), k=st.integers(1, 3), padding=st.integers(0, 2),
       seed=st.integers(0, 2**31 - 1))
def test_im2col_convolution_equals_direct_loop(n, h, w, c, out, k, padding, seed, direct_conv):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, h, w, c))
    weight = rng.normal(size=(out, c, k, k))
    ho = h + 2 * padding - k + 1
    wo = w + 2 * padding - k + 1
    y = (im2col(x, k, k, padding) @ conv_weight_matrix(weight)).reshape(n, ho, wo, out)
    np.testing.assert_allclose(y, direct_conv(x, weight, padding), rtol=1e-10, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(h=st.integers(3, 8), c=st.integers(1, 3), out=st.integers(1, 3), k=st.integers(1, 3),
       padding=st.integers(0, 2), seed=st.integers(0, 2**31 - 1))
def test_fast_conv_input_grad_equals_col2im(h, c, out, k, padding, seed):
    rng = np.random.default_rng(seed)
    x_shape = (2, h, h + 1, c)
    weight = rng.normal(size=(out, c, k, k))
    ho, wo = h + 2 * padding - k + 1, h + 1 + 2 * padding - k + 1
    dy = rng.normal(size=(2 * ho * wo, out))
    np.testing.assert_allclose(conv_input_grad(dy, weight, x_shape, padding),
                               col2im(dy @ conv_weight_matrix(weight).T, x_shape, k, k, padding),
                               rtol=1e-10, atol=1e-10)
    for pool in (2, 3):                           # dy grouped by pooling window
        grouped = np.stack(window_offsets(dy.reshape(2, ho, wo, out), pool))
        spatial = ungroup(grouped, pool, ho, wo).reshape(-1, out)
        np.testing.assert_allclose(conv_input_grad(grouped, weight, x_shape, padding, pool),
                                   col2im(spatial @ conv_weight_matrix(weight).T, x_shape, k, k,
                                          padding), rtol=1e-10, atol=1e-10)


def test_col2im_is_the_adjoint_of_im2col():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 6, 3))
    cols = im2col(x, 3, 3, 1)
    d = rng.normal(size=cols.shape)
    assert np.isclose((cols * d).sum(), (x * col2im(d, x.shape, 3, 3, 1)).sum())


def test_max_pool_routes_each_window_to_its_first_maximum():
    x = np.zeros((1, 4, 4, 1))
    x[0, 1, 1, 0] = 5.0
    x[0, 2:, 2:, 0] = 3.0                       # a four-way tie: only the first wins
    y, winners = max_pool(x, 2)
    assert y[0, :, :, 0].tolist() == [[5.0, 0.0], [0.0, 3.0]]
    routed = max_pool_backward(np.ones_like(y), winners, x.shape, 2)[0, :, :, 0]
    assert routed.reshape(2, 2, 2, 2).sum(axis=(1, 3)).tolist() == [[1, 1], [1, 1]]   # one each
    assert routed[1, 1] == 1 and routed[2, 2] == 1 and routed[3, 3] == 0


@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("gain", [1.0, 0.37])
def test_conv2d_gradients_match_finite_differences(padding, gain, check_layer_grads):
    rng = np.random.default_rng(padding)
    layer = Conv2d("c", 2, 3, 3, padding, rng, dtype=np.float64)
    layer.gain = gain
    check_layer_grads(layer, rng.normal(size=(2, 5, 6, 2)), rng)


@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_linear_gradients_match_finite_differences(gain, check_layer_grads):
    rng = np.random.default_rng(1)
    layer = Linear("fc", 7, 4, rng, dtype=np.float64)
    layer.gain = gain
    check_layer_grads(layer, rng.normal(size=(3, 7)), rng)


def test_masked_weights_get_no_gradient_and_ternary_forward_uses_signs():
    rng = np.random.default_rng(2)
    layer = Linear("fc", 6, 3, rng, dtype=np.float64)
    layer.mask = (rng.random(layer.weight.shape) < 0.5).astype(np.float64)
    layer.ternary = True
    assert set(np.unique(layer.effective_weight())) <= {-1.0, 0.0, 1.0}
    assert np.array_equal(layer.effective_weight() == 0, layer.mask == 0)
    x = rng.normal(size=(4, 6))
    layer.forward(x)
    layer.backward(rng.normal(size=(4, 3)))
    assert np.all(layer.grad[layer.mask == 0] == 0)


def test_hardtanh_gradient_matches_finite_differences(check_layer_grads):
    rng = np.random.default_rng(3)
    x = rng.uniform(-2, 2, size=(4, 5))
    x[np.abs(np.abs(x) - 1) < 1e-3] = 0.5       # keep away from the kinks
    check_layer_grads(HardTanh(), x, rng, check_weight=False)
    assert HardTanh().forward(np.array([-3.0, -0.5, 0.2, 7.0])).tolist() == [-1, -0.5, 0.2, 1]


@pytest.mark.parametrize("k,h", [(2, 6), (3, 9), (2, 7)])
def test_maxpool_gradient_matches_finite_differences(k, h, check_layer_grads):
    rng = np.random.default_rng(k)
    x = rng.normal(size=(2, h, h, 3))           # distinct values: no ties
    check_layer_grads(MaxPool2d(k), x, rng, check_weight=False)


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
    np.testing.assert_allclose(d, numeric_grad(lambda: softmax_cross_entropy(logits, labels)[0],
                                               logits), rtol=1e-6, atol=1e-8)
    assert loss > 0


def test_weighted_cross_entropy_gradient_matches_finite_differences(numeric_grad):
    rng = np.random.default_rng(15)
    logits = rng.normal(size=(6, 3))
    labels = np.array([0, 1, 1, 2, 1, 0])
    weights = np.array([1.0, 2.5, 0.5])
    loss, d = softmax_cross_entropy(logits, labels, weights)
    np.testing.assert_allclose(
        d, numeric_grad(lambda: softmax_cross_entropy(logits, labels, weights)[0], logits),
        rtol=1e-6, atol=1e-8)


def test_integer_class_weights_equal_repeating_each_sample_that_many_times():
    """The weighted mean (PyTorch's CrossEntropyLoss(weight=)) of a batch is the plain mean of
    the batch with each sample repeated w_y times; so are the gradients, summed over repeats."""
    rng = np.random.default_rng(16)
    logits = rng.normal(size=(5, 3))
    labels = np.array([1, 0, 2, 1, 1])
    weights = np.array([1, 3, 2])
    repeats = weights[labels]
    loss, d = softmax_cross_entropy(logits, labels, weights.astype(float))
    loss_rep, d_rep = softmax_cross_entropy(np.repeat(logits, repeats, axis=0),
                                            np.repeat(labels, repeats))
    assert loss == pytest.approx(loss_rep, rel=1e-12)
    summed = np.add.reduceat(d_rep, np.concatenate([[0], np.cumsum(repeats)[:-1]]), axis=0)
    np.testing.assert_allclose(d, summed, rtol=1e-12, atol=1e-15)
    unit = softmax_cross_entropy(logits, labels, np.ones(3))
    np.testing.assert_allclose(unit[1], softmax_cross_entropy(logits, labels)[1], rtol=1e-12)


def test_sgd_momentum_matches_hand_computation_and_keeps_pruned_weights_zero():
    rng = np.random.default_rng(6)
    layer = Linear("fc", 3, 2, rng, dtype=np.float64)
    layer.mask = np.array([[1, 0, 1], [1, 1, 0]], dtype=np.float64)
    layer.weight *= layer.mask
    w0 = layer.weight.copy()
    opt = SGD([layer], lr=0.1, momentum=0.9)
    g = rng.normal(size=w0.shape) * layer.mask
    layer.grad = g
    opt.step()
    opt.step()                                   # v1 = g, v2 = 0.9 g + g
    np.testing.assert_allclose(layer.weight, (w0 - 0.1 * g - 0.1 * 1.9 * g) * layer.mask)
    assert np.all(layer.weight[layer.mask == 0] == 0)


@pytest.mark.parametrize("make", [
    lambda rng: (Conv2d("c", 2, 3, 3, 1, rng, dtype=np.float64), (2, 5, 5, 2)),
    lambda rng: (Linear("fc", 6, 4, rng, dtype=np.float64), (3, 6)),
])
def test_learned_gain_gradient_matches_finite_differences(make):
    rng = np.random.default_rng(7)
    layer, shape = make(rng)
    layer.gain, layer.learn_gain = 0.7, True
    x = rng.normal(size=shape)
    r = rng.normal(size=layer.forward(x).shape)
    layer.forward(x)
    layer.backward(r)
    eps = 1e-6
    layer.gain = 0.7 + eps
    plus = float((layer.forward(x) * r).sum())
    layer.gain = 0.7 - eps
    minus = float((layer.forward(x) * r).sum())
    assert np.isclose(layer.gain_grad, (plus - minus) / (2 * eps), rtol=1e-6)


@pytest.mark.parametrize("lsq", [False, True])
def test_sgd_gain_step_is_the_gradient_or_lsqs_gradient_over_sqrt_kept_weights(lsq):
    rng = np.random.default_rng(8)
    layer = Linear("fc", 5, 4, rng, dtype=np.float64)
    layer.mask = (rng.random((4, 5)) < 0.6).astype(np.float64)      # N = kept weights
    layer.ternary, layer.learn_gain, layer.gain = True, True, 0.5
    layer.grad, layer.gain_grad = np.zeros((4, 5)), 0.5
    opt = SGD([layer], lr=0.1, momentum=0.9, lsq_gains=lsq)
    opt.step()
    opt.step()                                   # v1 = g, v2 = 1.9 g
    g = 0.5 / np.sqrt(layer.mask.sum()) if lsq else 0.5
    assert np.isclose(layer.gain, 0.5 - 0.1 * g - 0.1 * 1.9 * g)
    assert type(layer.gain) is float


@settings(max_examples=25, deadline=None)
@given(h=st.integers(4, 9), c=st.integers(1, 3), k=st.integers(1, 3), padding=st.integers(0, 2),
       pool=st.integers(2, 3), seed=st.integers(0, 2**31 - 1))
def test_im2col_grouped_by_pooling_window_is_the_pooled_rows_reordered(h, c, k, padding, pool,
                                                                       seed):
    x = np.random.default_rng(seed).normal(size=(2, h, h + 1, c))
    ho, wo = h + 2 * padding - k + 1, h + 2 + 2 * padding - k
    spatial = im2col(x, k, k, padding).reshape(2, ho, wo, -1)
    grouped = im2col(x, k, k, padding, pool).reshape(pool * pool, 2, ho // pool, wo // pool,
                                                     k * k * c)
    for g in range(pool * pool):
        a, b = divmod(g, pool)
        for py in range(ho // pool):
            for px in range(wo // pool):
                np.testing.assert_array_equal(grouped[g, :, py, px],
                                              spatial[:, pool * py + a, pool * px + b])


@pytest.mark.parametrize("k,h,kernel,padding", [(2, 6, 3, 1), (2, 7, 3, 2), (3, 9, 3, 0),
                                                (3, 10, 3, 1), (2, 5, 1, 1)])
def test_convolution_grouped_for_pooling_equals_spatial_convolution_then_pooling(
        k, h, kernel, padding, check_layer_grads):
    """Forward and both gradients of conv -> pool, grouped, against the spatial path; and the
    grouped pair's gradients against finite differences."""
    rng = np.random.default_rng(k + h)
    x = rng.normal(size=(2, h, h, 2))
    results = []
    for pool in (1, k):
        conv = Conv2d("c", 2, 3, kernel, padding, np.random.default_rng(0), dtype=np.float64)
        conv.pool, conv.gain = pool, 0.6
        pooling = MaxPool2d(k)
        y = pooling.forward(conv.forward(x))
        r = np.random.default_rng(1).normal(size=y.shape)
        dx = conv.backward(pooling.backward(r))
        results.append((y, dx, conv.grad.copy()))
    for spatial, grouped in zip(*results):
        np.testing.assert_allclose(grouped, spatial, rtol=1e-12, atol=1e-12)

    class Pair:                                   # the grouped pair as one layer
        weight = conv.weight

        def forward(self, x):
            return pooling.forward(conv.forward(x))

        def backward(self, d):
            out = conv.backward(pooling.backward(d))
            self.grad = conv.grad
            return out
    check_layer_grads(Pair(), x, rng)


def test_ungroup_puts_each_window_offset_back_and_zeros_the_dropped_edge():
    x = np.random.default_rng(9).normal(size=(2, 7, 5, 3))
    grouped = np.stack(window_offsets(x, 2))
    back = ungroup(grouped, 2, 7, 5)
    np.testing.assert_array_equal(back[:, :6, :4], x[:, :6, :4])
    assert not back[:, 6].any() and not back[:, :, 4].any()


@pytest.mark.parametrize("pool", [1, 2])
def test_conv_input_grad_a_few_images_at_a_time_equals_all_at_once(pool, monkeypatch):
    rng = np.random.default_rng(11)
    x_shape, weight = (5, 6, 6, 2), rng.normal(size=(3, 2, 3, 3))
    dy = rng.normal(size=(5 * 6 * 6, 3))
    if pool > 1:
        dy = np.stack(window_offsets(dy.reshape(5, 6, 6, 3), pool))
    whole = conv_input_grad(dy, weight, x_shape, 1, pool)
    monkeypatch.setattr(layers, "WINDOW_BYTES", 1)          # one image per block
    np.testing.assert_array_equal(conv_input_grad(dy, weight, x_shape, 1, pool), whole)
    spatial = dy.reshape(-1, 3) if pool == 1 else ungroup(dy, pool, 6, 6).reshape(-1, 3)
    np.testing.assert_allclose(whole, col2im(spatial @ conv_weight_matrix(weight).T, x_shape, 3,
                                             3, 1), rtol=1e-10, atol=1e-10)


# -- the fast tier equals the textbook tier -----------------------------------------------------

TOLERANCE = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=1e-5, atol=1e-5)}


def configure(layer, mode):
    """float: the plain float layer. gain: masked float weights with a learned gain != 1.
    ternary: the straight-through layer of p-SIREN step 4 (mask, signs, learned gain != 1)."""
    if mode != "float":
        rng = np.random.default_rng(99)          # the same mask for both tiers
        layer.mask = (rng.random(layer.weight.shape) < 0.6).astype(layer.weight.dtype)
        layer.ternary, layer.learn_gain, layer.gain = mode == "ternary", True, 0.45
    return layer


def forward_backward(modules, x, seed=1):
    """Output, input gradient (None for a first layer) of the loss sum(y * r), r random."""
    y = x
    for m in modules:
        y = m.forward(y)
    d = np.random.default_rng(seed).normal(size=y.shape).astype(x.dtype)
    for m in reversed(modules):
        d = m.backward(d)
    return y, d


def assert_tiers_equal(fast_modules, book_modules, x, dtype):
    tol = TOLERANCE[dtype]
    y_fast, dx_fast = forward_backward(fast_modules, x)
    y_book, dx_book = forward_backward(book_modules, x)
    assert y_fast.dtype == y_book.dtype == dtype
    np.testing.assert_allclose(y_fast, y_book, **tol)
    np.testing.assert_allclose(dx_fast, dx_book, **tol)
    for fast, book in zip(fast_modules, book_modules):
        if isinstance(book, textbook.Weighted):
            np.testing.assert_allclose(fast.grad, book.grad, **tol)
            assert np.isclose(fast.gain_grad, book.gain_grad, **tol)


DTYPES = [np.float64, np.float32]
MODES = ["float", "gain", "ternary"]


def test_fast_layers_are_textbook_layers_and_shared_ones_are_defined_once():
    conv = Conv2d("c", 2, 3, 3, 1, np.random.default_rng(0))
    assert isinstance(conv, textbook.Conv2d) and conv.pool == 1
    assert Conv2d("c", 2, 3, 3, 1, np.random.default_rng(0), pool=3).pool == 3
    assert isinstance(MaxPool2d(2), textbook.MaxPool2d)
    for name in ("Weighted", "Linear", "HardTanh", "Flatten", "softmax_cross_entropy", "SGD",
                 "col2im", "conv_weight_matrix"):
        assert getattr(layers, name) is getattr(textbook, name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_same_seed_gives_identical_initial_weights_in_both_tiers(dtype):
    for fast, book in [
        (Conv2d("c", 3, 4, 5, 2, np.random.default_rng(5), dtype, pool=2),
         textbook.Conv2d("c", 3, 4, 5, 2, np.random.default_rng(5), dtype)),
        (Linear("fc", 7, 3, np.random.default_rng(5), dtype),
         textbook.Linear("fc", 7, 3, np.random.default_rng(5), dtype)),
    ]:
        assert fast.weight.dtype == book.weight.dtype == dtype
        np.testing.assert_array_equal(fast.weight, book.weight)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape,cin,cout,kernel,padding,first", [
    ((2, 6, 7), 1, 3, 3, 1, False), ((2, 5, 5), 3, 2, 1, 0, False),
    ((1, 7, 6), 2, 4, 5, 2, False), ((2, 6, 6), 2, 3, 3, 1, True)])
def test_fast_conv2d_equals_textbook_conv2d(dtype, mode, shape, cin, cout, kernel, padding,
                                            first):
    convs = [configure(cls("c", cin, cout, kernel, padding, np.random.default_rng(3), dtype), mode)
             for cls in (Conv2d, textbook.Conv2d)]
    for conv in convs:
        conv.needs_input_grad = not first
    x = np.random.default_rng(4).normal(size=shape + (cin,)).astype(dtype)
    if first:                                    # no input gradient: compare the weights' only
        for conv in convs:
            forward_backward([conv], x)
        np.testing.assert_allclose(convs[0].grad, convs[1].grad, **TOLERANCE[dtype])
        return
    assert_tiers_equal(convs[:1], convs[1:], x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("padding", [0, 2])
@pytest.mark.parametrize("cin,kernel", [(1, 3), (2, 3), (2, 1)])
def test_fast_conv2d_grouped_for_pooling_equals_textbook_conv2d_then_pooling(dtype, mode, k,
                                                                            padding, cin, kernel):
    """The fast pair (rows grouped by window, conv pool=k) against the textbook's spatial pair;
    kernel 1 with padding 2 takes the fast input gradient's ungrouping path."""
    x = np.random.default_rng(k + padding).normal(size=(2, 9, 8, cin)).astype(dtype)
    fast = configure(Conv2d("c", cin, 3, kernel, padding, np.random.default_rng(0), dtype,
                            pool=k), mode)
    book = configure(textbook.Conv2d("c", cin, 3, kernel, padding, np.random.default_rng(0),
                                     dtype), mode)
    ho, wo = 9 + 2 * padding - kernel + 1, 8 + 2 * padding - kernel + 1
    grouped, spatial = fast.forward(x), book.forward(x)
    assert grouped.shape == (k * k, 2, ho // k, wo // k, 3)
    hk, wk = ho // k * k, wo // k * k            # the part pooling keeps
    np.testing.assert_allclose(ungroup(grouped, k, ho, wo)[:, :hk, :wk], spatial[:, :hk, :wk],
                               **TOLERANCE[dtype])
    assert_tiers_equal([fast, MaxPool2d(k), HardTanh()],
                       [book, textbook.MaxPool2d(k), textbook.HardTanh()], x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,h,w", [(2, 6, 6), (2, 7, 5), (3, 9, 10)])
def test_fast_max_pool_equals_textbook_max_pool_ties_included(dtype, k, h, w):
    rng = np.random.default_rng(k * h * w)
    x = rng.integers(-2, 3, size=(2, h, w, 3)).astype(dtype)          # many ties
    y_fast, winners_fast = max_pool(x, k)
    y_book, winners_book = textbook.max_pool(x, k)
    np.testing.assert_array_equal(y_fast, y_book)
    np.testing.assert_array_equal(winners_fast, winners_book)
    dy = rng.normal(size=y_book.shape).astype(dtype)
    np.testing.assert_array_equal(max_pool_backward(dy, winners_fast, x.shape, k),
                                  textbook.max_pool_backward(dy, winners_book, x.shape, k))
    assert_tiers_equal([MaxPool2d(k)], [textbook.MaxPool2d(k)], x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_fast_linear_hardtanh_flatten_equal_textbook_ones(dtype, mode):
    x = np.random.default_rng(2).normal(size=(3, 2, 3, 4)).astype(dtype)
    linears = [configure(cls("fc", 24, 5, np.random.default_rng(1), dtype), mode)
               for cls in (Linear, textbook.Linear)]
    assert_tiers_equal([Flatten(), HardTanh(0.8), linears[0]],
                       [textbook.Flatten(), textbook.HardTanh(0.8), linears[1]], x, dtype)


def test_im2col_of_both_tiers_is_the_same_matrix():
    rng = np.random.default_rng(10)
    for c in (1, 3):                             # one channel: the fast one's transposed layout
        x = rng.normal(size=(2, 6, 5, c))
        np.testing.assert_array_equal(im2col(x, 3, 2, 1), textbook.im2col(x, 3, 2, 1))


def small_network(tier, dtype):
    rng = np.random.default_rng(21)
    conv = tier.Conv2d("layer1.0", 1, 4, 3, 1, rng, dtype)
    fc = tier.Linear("fc", 4 * 3 * 3, 5, rng, dtype)
    if tier is layers:
        conv.pool = 2                            # as minisense.network sets it
    configure(conv, "ternary")
    configure(fc, "gain")
    return [conv, tier.MaxPool2d(2), tier.HardTanh(), tier.Flatten(), fc], [conv, fc]


@pytest.mark.parametrize("dtype", DTYPES)
def test_an_sgd_step_gives_equal_weights_in_both_tiers(dtype):
    """Forward, cross-entropy, backward and SGD (momentum, weight decay, LSQ gains), twice."""
    x = np.random.default_rng(22).normal(size=(4, 7, 7, 1)).astype(dtype)
    labels = np.array([0, 3, 4, 1])
    weighted = []
    for tier in (layers, textbook):
        modules, params = small_network(tier, dtype)
        opt = tier.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3, lsq_gains=True)
        for _ in range(2):
            y = x
            for m in modules:
                y = m.forward(y)
            d = softmax_cross_entropy(y, labels)[1]
            for m in reversed(modules):
                d = m.backward(d)
            opt.step()
        weighted.append(params)
    for fast, book in zip(*weighted):
        np.testing.assert_allclose(fast.weight, book.weight, **TOLERANCE[dtype])
        assert np.isclose(fast.gain, book.gain, **TOLERANCE[dtype])
