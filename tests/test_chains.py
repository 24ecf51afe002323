"""Parallel SENSE chains: a family of searches from one start, the same members wherever and
however often they run."""

import json

import numpy as np
import pytest

from minisense import chains, checkpoint, runs
from minisense.errors import MinisenseError
from minisense.sense import SenseConfig

CONFIG = dict(neighbours=10, train_images=200, screen_images=0, max_steps=12, seed=3)


def records(folder):
    """A search's step records without their wall times."""
    return [{k: v for k, v in json.loads(line).items()
             if k not in ("seconds", "evals_per_second")}
            for line in (folder / runs.LOG_FILE).read_text().splitlines()]


def best_weights(folder):
    return checkpoint.load(folder / "best")[0].ternary_weights()


def same_members(a, b, count):
    for i in range(count):
        fa, fb = chains.chain_folder(a, i), chains.chain_folder(b, i)
        assert records(fa) == records(fb)
        wa, wb = best_weights(fa), best_weights(fb)
        assert all(np.array_equal(wa[n], wb[n]) for n in wa)


@pytest.mark.slow
def test_chain_0_is_the_single_search_and_every_member_keeps_the_start_family(tmp_path):
    family = chains.run_chains(SenseConfig(**CONFIG), 3, tmp_path / "c", "digits",
                               sparsity=80)
    single = runs.start(SenseConfig(**CONFIG), tmp_path / "s", "digits", sparsity=80)
    single.run()
    assert records(chains.chain_folder(tmp_path / "c", 0)) == records(tmp_path / "s")
    assert family["same_family"] and [m["seed"] for m in family["members"]] == [3, 4, 5]
    start = runs.initial_network(3, "digits", sparsity=80)[0].family()
    for i in range(3):
        assert checkpoint.load(chains.chain_folder(tmp_path / "c", i) / "best")[0].family() \
            == start
    # The seeds differ, so the members do.
    assert records(chains.chain_folder(tmp_path / "c", 1)) != \
        records(chains.chain_folder(tmp_path / "c", 2))
    saved = json.loads((tmp_path / "c" / chains.FAMILY_FILE).read_text())
    assert saved["start_family"] == start and len(saved["members"]) == 3


@pytest.mark.slow
def test_two_processes_give_the_members_of_one_process_bit_for_bit(tmp_path):
    chains.run_chains(SenseConfig(**CONFIG), 2, tmp_path / "one", "digits", sparsity=80)
    chains.run_chains(SenseConfig(**CONFIG), 2, tmp_path / "two", "digits", sparsity=80,
                      jobs=2)
    same_members(tmp_path / "one", tmp_path / "two", 2)


@pytest.mark.slow
def test_a_dask_cluster_gives_the_same_members(tmp_path):
    distributed = pytest.importorskip("distributed")
    from threadpoolctl import threadpool_info, threadpool_limits

    blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                       dashboard_address=None)
    try:
        chains.run_chains(SenseConfig(**CONFIG), 2, tmp_path / "dask", "digits", sparsity=80,
                          backend="dask", scheduler=cluster.scheduler_address)
    finally:
        cluster.close()
        if blas:
            threadpool_limits(blas[0], user_api="blas")   # the threaded workers pinned ours
    chains.run_chains(SenseConfig(**CONFIG), 2, tmp_path / "local", "digits", sparsity=80)
    same_members(tmp_path / "dask", tmp_path / "local", 2)


@pytest.mark.slow
def test_running_the_chains_again_continues_them_to_the_longer_budget(tmp_path):
    chains.run_chains(SenseConfig(**{**CONFIG, "max_steps": 6}), 2, tmp_path / "c", "digits",
                      sparsity=80)
    chains.run_chains(SenseConfig(**CONFIG), 2, tmp_path / "c", "digits", sparsity=80)
    chains.run_chains(SenseConfig(**CONFIG), 2, tmp_path / "straight", "digits", sparsity=80)
    same_members(tmp_path / "c", tmp_path / "straight", 2)


def test_chains_of_other_settings_in_the_folder_are_refused(tmp_path):
    chains.run_chains(SenseConfig(**CONFIG), 1, tmp_path / "c", "digits", sparsity=80)
    with pytest.raises(MinisenseError, match="holds a chain of other settings"):
        chains.run_chains(SenseConfig(**{**CONFIG, "neighbours": 11}), 1, tmp_path / "c",
                          "digits", sparsity=80)


@pytest.mark.slow
def test_search_chains_from_the_command_line_and_its_ensemble(tmp_path, run, assert_ok,
                                                              assert_one_line_error):
    out = tmp_path / "family"
    assert_ok(run("search", "--init", "random", "--sparsity", "80", "--chains", "2",
                  "--max-steps", "8", "--neighbours", "10", "--train-images", "200",
                  "--out", out))
    assert (out / chains.FAMILY_FILE).is_file()
    result = run("ensemble", out, "--json", tmp_path / "e.json")
    assert_ok(result)
    saved = json.loads((tmp_path / "e.json").read_text())
    assert saved["same_family"] and saved["commensurate"] and len(saved["members"]) == 2
    assert_one_line_error(run("search", "--init", "random", "--sparsity", "80", "--chains",
                              "2", "--backprop", "--out", tmp_path / "b"))
