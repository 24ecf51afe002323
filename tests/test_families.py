"""The family figures (``reproduce ens-*``) in --quick: ensembles checked against a direct
computation from the members' checkpoints."""

import json

import numpy as np
import pytest

from minisense import chains, checkpoint, data, families, reproduce
from minisense.network import exact_logits

pytestmark = pytest.mark.slow          # every test here makes a figure


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("families")


@pytest.mark.parametrize("figure", ["ens-mnist80", "ens-mnist90"])
def test_family_figure_curve_equals_a_direct_ensemble_of_its_members(out, figure, quick):
    record = quick(out, figure)
    results = record["results"]
    members = reproduce.FIGURES[figure].quick["chains"]
    folder = out / figure / "chains"
    nets = [checkpoint.load(chains.chain_folder(folder, i) / "best")[0] for i in range(members)]
    digits = data.load_dataset("digits")
    test, val = digits.test, digits.validation
    logits = np.stack([exact_logits(n, test.images) for n in nets])
    val_acc = [n.accuracy(val.images, val.labels) for n in nets]
    curve = results["members_curve"]
    assert [r["members"] for r in curve] == list(range(1, members + 1))
    for k, row in enumerate(curve, start=1):
        assert row["sum"] == float((logits[:k].sum(axis=0).argmax(axis=1) == test.labels).mean())
        best = int(np.argmax(val_acc[:k]))
        assert row["best_member_test"] == nets[best].accuracy(test.images, test.labels)
    family = json.loads((folder / chains.FAMILY_FILE).read_text())
    assert family["same_family"] and len(family["members"]) == members
    for kind, rows in results["damage"].items():
        assert rows[0]["amount"] == 0
        assert rows[0]["ensemble_mean"] == curve[-1]["sum"], kind


def test_car_family_figure_runs_on_digits_without_driving(out):
    record = reproduce.run("ens-car", quick=True, out=out, dataset="digits")
    assert "drive" not in record["results"] and "members" in record["summary"]


def test_transfer_figure_starts_from_the_source_network_and_its_shuffled_family(out, quick):
    record = quick(out, "transfer")
    source, _ = checkpoint.load(record["results"]["start"])
    same = families.shuffled(source, np.random.default_rng(0))
    assert same.family() == source.family() and same.thresholds == source.thresholds
    digits = data.load_dataset("digits")
    runs = record["results"]["runs"]
    assert runs["transfer"]["curve"][0]["test_accuracy"] == \
        source.accuracy(digits.test.images, digits.test.labels)
    assert runs["same_family"]["curve"][0]["test_accuracy"] == \
        same.accuracy(digits.test.images, digits.test.labels)
    assert record["results"]["reference"]["test_accuracy"] == \
        json.loads(checkpoint.checkpoint_paths(out / "psiren" / "digits-p90-quick")[1]
                   .read_text())["accuracy"]["test"]
