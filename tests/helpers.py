"""Plain constants more than one test file needs: a parametrize list is built when the module is
collected, where no fixture reaches. Shared functions and objects are fixtures in conftest.py;
this module holds no tests and imports none."""

# The tiny p-SIREN run on digits of the command-line tests: one dense and one pruning epoch.
TINY = ["--dataset", "digits", "--sparsity", "80", "--seed", "0", "--epochs-dense", "1",
        "--epochs-prune", "1", "--epochs-sparse", "0", "--epochs-binary", "0"]

# The weighted layers of the paper's two networks, in forward order.
LAYERS = {"mnist": ["layer1.0", "layer2.0", "fc"], "car": ["layer1.0", "layer2.0", "fc1", "fc2"]}

# The first eight bytes of every PNG file.
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
