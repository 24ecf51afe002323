"""Writing files safely: the one place the package writes results, checkpoints and downloads.

Every file is written through a temporary file in the same folder and renamed over its target, so
an interrupted run leaves either the old file or the new one, never half of one. A run folder has
one writer at a time (:func:`folder_lock`). A failed write is a one-line ``MinisenseError`` naming
the file and the likely fix (:func:`write_error`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pathlib
import tempfile

try:
    import fcntl
except ImportError:                 # Windows: run folders are not locked there
    fcntl = None

from minisense.errors import MinisenseError

LOCK_FILE = ".minisense.lock"
# The file that marks each kind of run folder (train, search, search --backprop, search --chains,
# car dagger).
RUN_MARKS = {"trained run": "model.npz", "search": "state.npz", "backprop line": "backprop.jsonl",
             "family of chains": "family.json", "DAgger run": "dagger.json"}
# Files a run or a recording owns: never a place for another command's output.
RUN_FILES = {"model.npz", "model.json", "metrics.json", "state.npz", "steps.jsonl", "config.json",
             "summary.json", "backprop.jsonl", "family.json", "carracing.npz", "carracing.json",
             "dagger.json", "rounds.jsonl", LOCK_FILE}


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (/proc/self/status):
    setting it to read it back would race with other threads creating files."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode an ordinary ``open()`` gives a new file (0o666 less the umask); temporary files
    start private (0600), and a file renamed into place should not stay so."""
    return 0o666 & ~_umask()


def write_error(path, error: OSError) -> MinisenseError:
    """A failed write as one line naming the file and the likely fix."""
    if error.errno in (errno.ENOTDIR, errno.EEXIST):
        return MinisenseError(f"cannot write {path}: a file stands where a folder is needed on "
                              "that path; choose another path")
    return MinisenseError(f"cannot write {path}: {error.strerror or error}; check that its folder "
                          "can be created and written and that the disk has space")


def check_outputs(outputs: dict, inputs=(), force: bool = False) -> None:
    """Before anything is written: one-line errors unless every output path (``outputs``:
    option name -> path or None) is a file path of its own, not a file the command reads
    (``inputs``), not a file of a run (``RUN_FILES``), not under a file, and, unless ``force``,
    not an existing file."""
    read = {pathlib.Path(p).resolve() for p in inputs}
    seen: dict[pathlib.Path, str] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        path = pathlib.Path(path)
        resolved = path.resolve()
        if resolved in seen:
            raise MinisenseError(f"{option} and {seen[resolved]} both name {path}; give each "
                                 "its own file")
        seen[resolved] = option
        if resolved in read:
            raise MinisenseError(f"{option} {path} is a file this command reads; choose another "
                                 "path (nothing was written)")
        if path.is_dir():
            raise MinisenseError(f"{option} {path} is a folder; give a file path in it")
        if path.name in RUN_FILES and path.exists():
            raise MinisenseError(f"{option} {path} is a file of a run or recording; choose "
                                 "another path (nothing was written)")
        if path.exists() and not force:
            raise MinisenseError(f"{option} {path} already exists; pass --force to replace it, "
                                 "or choose another path")
        folder = next(p for p in (path.absolute(), *path.absolute().parents)
                      if p.exists() or p == p.parent)
        if folder != path.absolute() and not folder.is_dir():
            raise MinisenseError(f"cannot write {path}: a file stands where a folder is needed "
                                 "on that path; choose another path")
        if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            raise MinisenseError(f"cannot write {path}: the folder {folder} is read-only; "
                                 "choose another path")


def check_run_folder(out, kind: str) -> None:
    """A one-line error if the folder ``out`` holds a run of another kind than ``kind`` (a key
    of ``RUN_MARKS``): its files would be written over or mixed with this run's."""
    out = pathlib.Path(out)
    for other, mark in RUN_MARKS.items():
        if other != kind and (out / mark).exists():
            raise MinisenseError(f"{out} holds a {other} ({mark}); a {kind} there would write "
                                 "over or beside its files: choose another --out")


@contextlib.contextmanager
def folder_lock(folder):
    """Hold ``folder`` (a run folder) for one writer: a second process gets a one-line error
    naming the holder. The lock is the kernel's (``flock``), so it ends with the process, even
    under kill -9; where ``fcntl`` does not exist (Windows) no lock is taken."""
    folder = pathlib.Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, file_mode())
    except OSError as e:
        raise write_error(folder / LOCK_FILE, e) from None
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another"
                raise MinisenseError(f"{folder} is in use by process {holder}; wait until it "
                                     "ends or choose another --out") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield folder
    finally:
        os.close(fd)                # closing releases the flock


@contextlib.contextmanager
def atomic_file(path, sync: bool = True):
    """A binary file object whose content replaces ``path`` when the ``with`` block ends
    normally; an exception in the block (it passes through unchanged) leaves ``path`` as it was.

    The rename alone survives a killed process; ``sync`` also flushes to disk (power loss). The
    file gets the mode an ordinary ``open()`` would give it.
    """
    path = pathlib.Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise write_error(path, e) from None
    done = False
    f = os.fdopen(fd, "wb")
    try:
        failed = True
        try:
            yield f
            try:
                f.flush()
                if sync:
                    os.fsync(f.fileno())
                os.fchmod(f.fileno(), file_mode())
            except OSError as e:
                raise write_error(path, e) from None
            failed = False
        finally:
            # A full disk fails the flush above and then again on close (the buffer is still
            # there): the first error is the one to report, so a failing close stays quiet
            # unless it is the only error.
            try:
                f.close()
            except OSError as e:
                if not failed:
                    raise write_error(path, e) from None
        try:
            os.replace(tmp, path)
        except OSError as e:
            raise write_error(path, e) from None
        done = True
    finally:
        if not done:
            pathlib.Path(tmp).unlink(missing_ok=True)


def atomic_write_bytes(path, data: bytes, sync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_file`)."""
    with atomic_file(path, sync) as f:
        try:
            f.write(data)
        except OSError as e:
            raise write_error(path, e) from None


def atomic_write_json(path, obj, sync: bool = True) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode(), sync)
