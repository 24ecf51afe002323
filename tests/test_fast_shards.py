"""A batch in shards (minisense.fast.shards) against the same batch in one piece (the textbook
Network.forward and backward on the same layers), and the same result on any number of threads."""

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from minisense.fast.layers import SGD, softmax_cross_entropy
from minisense.fast.shards import Shards, Workers, blas_threads, one_blas_thread
from minisense.network import Network, binarize, build_network, exact_logits
from minisense.textbook.psiren import sgd_step


def batch(architecture, n, seed=0):
    net = build_network(architecture, seed)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, *net.input_shape), dtype=np.uint8)
    labels = rng.integers(0, net.num_classes, n)
    return net, images, labels


def sharded_grads(net, images, labels, threads, shards=2):
    with Shards(net.modules, shards=shards, threads=threads) as s:
        logits = s.forward(net.input(images))
        s.backward(softmax_cross_entropy(logits, labels)[1])
    return logits, {name: layer.grad.copy() for name, layer in net.weighted.items()}


@pytest.mark.parametrize("architecture", ["mnist", "car"])
def test_shards_give_the_whole_batch_output_and_gradients(architecture):
    net, images, labels = batch(architecture, 9)
    whole = Network.forward(net, images)            # the batch in one piece
    Network.backward(net, softmax_cross_entropy(whole, labels)[1])
    expected = {name: layer.grad.copy() for name, layer in net.weighted.items()}
    for shards in (2, 3):
        logits, grads = sharded_grads(net, images, labels, threads=2, shards=shards)
        np.testing.assert_allclose(logits, whole, rtol=1e-5, atol=1e-6)
        for name, grad in grads.items():
            scale = np.abs(expected[name]).max()
            np.testing.assert_allclose(grad, expected[name], rtol=1e-4, atol=1e-5 * scale,
                                       err_msg=name)


def test_shards_sum_the_learned_gains_gradients():
    """p-SIREN step 4: masked ternary layers with learned gains, as in training."""
    net, images, labels = batch("mnist", 8, seed=1)
    binarize(net)
    for layer in net.weighted.values():
        layer.learn_gain = True
    Network.backward(net, softmax_cross_entropy(Network.forward(net, images), labels)[1])
    expected = {name: layer.gain_grad for name, layer in net.weighted.items()}
    sharded_grads(net, images, labels, threads=2)
    for name, layer in net.weighted.items():
        assert layer.gain_grad == pytest.approx(expected[name], rel=1e-4, abs=1e-6), name


def test_the_number_of_threads_does_not_change_a_bit():
    net, images, labels = batch("mnist", 10, seed=2)
    one = sharded_grads(net, images, labels, threads=1)
    two = sharded_grads(net, images, labels, threads=2)
    assert np.array_equal(one[0], two[0])
    for name in one[1]:
        assert np.array_equal(one[1][name], two[1][name]), name


def test_sgd_steps_on_one_or_two_threads_give_the_same_weights():
    runs = []
    for threads in (1, 2):
        net, images, labels = batch("mnist", 20, seed=3)
        optimizer = SGD(list(net.weighted.values()), lr=0.05, momentum=0.9, weight_decay=5e-4)
        net.shards = Shards(net.modules, threads=threads)
        losses = [sgd_step(net, optimizer, images[i:i + 5], labels[i:i + 5])
                  for i in range(0, 20, 5)]
        runs.append((losses, [layer.weight.copy() for layer in net.weighted.values()]))
    assert runs[0][0] == runs[1][0]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_a_batch_smaller_than_the_shards():
    net, images, labels = batch("mnist", 1, seed=4)
    whole = Network.forward(net, images)
    logits, _ = sharded_grads(net, images, labels, threads=2, shards=3)
    np.testing.assert_allclose(logits, whole, rtol=1e-5, atol=1e-6)


def test_one_blas_thread_holds_on_every_thread_until_the_last_user_leaves():
    """Two users on two threads (two tasks on a Dask worker), after this thread set a limit
    outside a ``with`` (threadpoolctl 3.8 then ignored every other thread's): one BLAS thread
    from the first's entry to the last's exit, the limit found at the start given back then."""
    original = blas_threads()
    if original < 2:
        pytest.skip("BLAS has a single thread here: nothing to limit")
    threadpool_limits(original, user_api="blas")
    first_in, first_out, second_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with one_blas_thread():
            seen["first, alone"] = blas_threads()
            first_in.set()
            first_out.wait(60)
        seen["first left, second still in"] = blas_threads()
        second_out.set()

    def second():
        first_in.wait(60)
        with one_blas_thread():
            seen["both in"] = blas_threads()
            first_out.set()
            second_out.wait(60)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"first, alone": 1, "both in": 1, "first left, second still in": 1}
    assert blas_threads() == original


def test_workers_keep_the_order_of_the_parts():
    with Workers(threads=2) as workers:
        assert workers.map(lambda i, part: (i, part * 2), [3, 1, 4, 1, 5]) == \
            [(0, 6), (1, 2), (2, 8), (3, 2), (4, 10)]


def test_workers_pass_numpy_error_settings_to_their_threads():
    def overflow(i, part):
        return np.float32(3e38) * np.float32(part)

    with np.errstate(over="raise"), Workers(threads=2) as workers:
        with pytest.raises(FloatingPointError):
            workers.map(overflow, [1, 10])


@pytest.mark.parametrize("architecture", ["mnist", "car"])
def test_exact_logits_in_batches_on_threads_equal_a_plain_integer_loop(architecture, sparse_binary,
                                                                       integer_oracle):
    net = sparse_binary(architecture, 5)
    images = np.random.default_rng(5).integers(0, 256, (5, *net.input_shape), dtype=np.uint8)
    z = exact_logits(net, images, batch_size=2)
    for image, row in zip(images, z):
        assert np.array_equal(row, integer_oracle(net, image))
