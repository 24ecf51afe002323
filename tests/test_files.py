"""Atomic writes and the run-folder lock: a failed write leaves the old file and no debris."""

import os
import stat

import pytest

from minisense import files
from minisense.errors import MinisenseError


def test_a_write_replaces_the_file_with_the_mode_open_would_give(tmp_path):
    target = tmp_path / "a" / "b.json"
    files.atomic_write_json(target, {"x": 1})
    files.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~files._umask()
    assert sorted(p.name for p in target.parent.iterdir()) == ["b.json"]


def test_an_error_inside_the_block_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "kept.bin"
    target.write_bytes(b"old")

    class Stop(Exception):
        pass

    with pytest.raises(Stop):                        # the caller's own error passes unchanged
        with files.atomic_file(target) as f:
            f.write(b"half of the new")
            raise Stop
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["kept.bin"]


def test_a_file_where_a_folder_should_be_is_a_one_line_error(tmp_path):
    (tmp_path / "plain").write_text("not a folder")
    with pytest.raises(MinisenseError, match="a file stands where a folder is needed"):
        files.atomic_write_bytes(tmp_path / "plain" / "x.bin", b"data")


@pytest.mark.skipif(files.fcntl is None, reason="no flock on this system")
def test_a_locked_folder_names_its_holder(tmp_path):
    with files.folder_lock(tmp_path / "run"):
        assert (tmp_path / "run" / files.LOCK_FILE).read_text().strip() == str(os.getpid())
        # flock is per open file description: a second open in this process is refused too
        with pytest.raises(MinisenseError, match=f"in use by process {os.getpid()}"):
            with files.folder_lock(tmp_path / "run"):
                pass
    with files.folder_lock(tmp_path / "run"):         # released: free again
        pass
