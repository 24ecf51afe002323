"""The paper's networks: shapes, binarization, and exact integer inference against float."""

import numpy as np
import pytest

from minisense.errors import MinisenseError
from minisense.network import INPUT_SCALE, binarize, build_network, exact_logits


@pytest.mark.parametrize("architecture,shape,names,flat", [
    ("mnist", (28, 28), ["layer1.0", "layer2.0", "fc"], 1568),
    ("car", (32, 32), ["layer1.0", "layer2.0", "fc1", "fc2"], 576),
])
def test_networks_have_the_papers_layers_and_flatten_size(architecture, shape, names, flat):
    net = build_network(architecture, 0)
    assert list(net.weighted) == names
    assert net.weighted[names[-2 if architecture == "car" else -1]].weight.shape[1] == flat
    images = np.random.default_rng(0).integers(0, 256, (3, *shape), dtype=np.uint8)
    assert net.forward(images).shape == (3, net.num_classes)


def test_unknown_architecture_is_a_one_line_error():
    with pytest.raises(MinisenseError, match="unknown architecture"):
        build_network("resnet", 0)


@pytest.mark.parametrize("architecture", ["mnist", "car"])
def test_binarize_gives_ternary_weights_integer_thresholds_and_keeps_zeros(architecture):
    net = build_network(architecture, 1)
    rng = np.random.default_rng(1)
    masks = {}
    for name, layer in net.weighted.items():
        masks[name] = rng.random(layer.weight.shape) >= 0.7
        layer.mask = masks[name].astype(np.float32)
        layer.weight *= layer.mask
    binarize(net)
    for name, w in net.ternary_weights().items():
        assert w.dtype == np.int8 and set(np.unique(w)) <= {-1, 0, 1}
        assert np.array_equal(w != 0, masks[name])
    previous = INPUT_SCALE
    for name, threshold in net.thresholds.items():
        assert isinstance(threshold, int) and threshold >= 1
        assert net.weighted[name].gain == previous / threshold
        previous = threshold


@pytest.mark.parametrize("architecture", ["mnist", "car"])
def test_exact_integer_logits_match_the_float_forward(architecture, sparse_binary):
    net = sparse_binary(architecture, 2)
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (64, *net.input_shape), dtype=np.uint8)
    z = exact_logits(net, images, batch_size=16)
    assert z.dtype == np.int64
    real = net.forward(images).astype(np.float64)
    np.testing.assert_allclose(real, net.logit_scale * z, rtol=1e-3,
                               atol=1e-3 * np.abs(real).max())


@pytest.mark.parametrize("architecture", ["mnist", "car"])
def test_exact_logits_equal_a_plain_integer_loop(architecture, sparse_binary, integer_oracle):
    net = sparse_binary(architecture, 3)
    images = np.random.default_rng(3).integers(0, 256, (2, *net.input_shape), dtype=np.uint8)
    z = exact_logits(net, images)
    for image, row in zip(images, z):
        assert np.array_equal(row, integer_oracle(net, image))


def test_exact_logits_stay_exact_when_sums_pass_2_to_the_24(sparse_binary, integer_oracle):
    """With huge thresholds float32 would round; exact_logits must switch to float64."""
    net = sparse_binary("mnist", 4, sparsity=0.0)
    net.thresholds = {name: 10**6 for name in net.thresholds}
    for layer in net.weighted.values():          # all +1: no cancellation, sums reach ~4e9
        layer.weight = np.abs(layer.weight) + 1
    image = np.full((28, 28), 255, dtype=np.uint8)
    expected = integer_oracle(net, image)
    assert np.abs(expected).max() > 2**24
    assert np.array_equal(exact_logits(net, image[None])[0], expected)


def test_family_counts_add_up_to_layer_sizes(sparse_binary):
    net = sparse_binary("mnist", 5)
    for name, counts in net.family().items():
        assert sum(counts.values()) == net.weighted[name].weight.size
