"""The built wheel: the packages minisense and minisense_cli (the cli/ folder), no top-level
``cli`` to collide with another project's, and the ``minisense`` command pointing at it."""

import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_holds_minisense_and_minisense_cli_and_no_top_level_cli(tmp_path):
    # Built from a copy: building in place would leave build/ in the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("minisense", "cli"):
        shutil.copytree(ROOT / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w",
                    str(tmp_path / "dist"), str(source)], check=True)
    wheel, = (tmp_path / "dist").glob("minisense-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"minisense", "minisense_cli", wheel.name.split("-py3")[0] + ".dist-info"}
    assert "minisense_cli/main.py" in names and "minisense/textbook/sense.py" in names
    info = top - {"minisense", "minisense_cli"}
    entry_points = zipfile.ZipFile(wheel).read(f"{info.pop()}/entry_points.txt").decode()
    assert "minisense = minisense_cli.main:main" in entry_points
