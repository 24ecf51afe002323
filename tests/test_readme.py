"""The README's "From Python" block runs as written, on digits, and does what it says."""

import pathlib
import re

import numpy as np
import pytest

import minisense

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"

pytestmark = pytest.mark.slow          # a p-SIREN run and a 500-step search: about 20 s


def python_blocks(section: str) -> list[str]:
    """The ```python blocks of the README's ``## <section>``."""
    text = README.read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end if end > 0 else None], re.S)


def test_the_readme_has_one_python_block_in_from_python():
    assert len(python_blocks("From Python")) == 1


def test_the_from_python_block_trains_searches_evaluates_and_saves(tmp_path, monkeypatch,
                                                                   capsys):
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(python_blocks("From Python")[0], str(README), "exec"), scope)
    printed = capsys.readouterr().out.splitlines()
    # the callback printed every 100th step, then the two accuracies
    assert [line.split()[0] for line in printed[:5]] == ["100", "200", "300", "400", "500"]
    assert printed[-2].startswith("p-SIREN ") and printed[-1].startswith("SENSE ")
    digits, trained, found = scope["digits"], scope["trained"], scope["found"]
    # p-SIREN's network is ternary at 90% zeros overall; its history ends with step 4
    assert trained.is_binary and scope["history"][-1]["step"] == "binary"
    weights = trained.ternary_weights()
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    assert zeros == round(0.9 * sum(w.size for w in weights.values()))
    # the search kept the random start's family and made 500 steps, start record first
    steps = scope["steps"]
    assert [r["step"] for r in steps] == list(range(501))
    assert found.family() == scope["start"].family()
    best = max(steps, key=lambda r: r["validation_accuracy"])
    assert found.accuracy(digits.validation.images, digits.validation.labels) == \
        best["validation_accuracy"]
    for net in (trained, found):        # far above chance (10%) on the test split
        assert net.accuracy(digits.test.images, digits.test.labels) > 0.5
    # the checkpoint holds exactly the network found
    loaded, meta = minisense.load_checkpoint(tmp_path / "runs" / "digits-sense")
    assert meta["architecture"] == "mnist"
    for name, w in found.ternary_weights().items():
        np.testing.assert_array_equal(loaded.ternary_weights()[name], w)
    assert sorted(p.name for p in (tmp_path / "runs" / "digits-sense").iterdir()) == \
        ["model.json", "model.npz"]
