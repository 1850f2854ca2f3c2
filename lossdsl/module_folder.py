"""The private folder where `runtime` writes the generated modules it imports.

Each process that makes a new loss class makes one folder (`tempfile.mkdtemp`, `lossdsl-*`) and
removes it at its exit. Only the process that made a folder removes it: a child forked from it
that exits normally runs the exit handlers it inherited, and removed its parent's folder (a
review), and a folder that has gone (a `/tmp` cleaned by age, too) is made again.

A process killed before its exit handlers run (SIGKILL, or SIGTERM as `multiprocessing.Pool`'s
`terminate()` sends its workers, which `with Pool(...)` does on leaving the block) cannot remove
its folder: each worker of such a pool left its folder and modules behind (a review of the
README's claims). So each folder holds an `owner` file locked (`fcntl.flock`) for as long as its
maker, or a child that inherited the lock, lives: the kernel lets go of the lock when they have
all ended, however they ended. `sweep()` removes this user's folders whose lock it can take.
It runs when a process makes its folder, and at the exit of a process that imported lossdsl and
`multiprocessing`, so that a pool's parent removes its terminated workers' folders as it ends.

The lock file is locked under a temporary name and then renamed, so a folder that holds
`owner` was locked before any sweep could see it: a sweep leaves alone a folder being made (no
`owner` yet), one made by an older lossdsl, and every folder where `fcntl` is missing (Windows).
"""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import sys
import tempfile

try:
    import fcntl
except ImportError:  # (Windows: folders are removed at exit only)
    fcntl = None

PREFIX = "lossdsl-"
OWNER = "owner"

_made: list[str] = []  # the folders this process made (the last one is in use)
_held: list[int] = []  # their locked owner files, open for as long as the process lives


def folder() -> str:
    """This process's folder of generated modules, made at first use and again if it has gone.

    A child forked from a process that made one writes into its parent's folder."""
    if not _made or not os.path.isdir(_made[-1]):
        sweep()
        path = tempfile.mkdtemp(prefix=PREFIX)
        _lock(path)
        atexit.register(_remove, path, os.getpid())
        if "multiprocessing" in sys.modules:
            # A worker of `multiprocessing` or `concurrent.futures` ends with `os._exit`, which
            # runs no exit handlers, after multiprocessing's own finalizers (a review of concurrency)
            from multiprocessing.util import Finalize

            Finalize(None, _remove, args=(path, os.getpid()), exitpriority=0)
        _made.append(path)
    return _made[-1]


def forget() -> None:
    """Let this process make a folder of its own at its next new loss (a forked child that
    should not share its parent's)."""
    _made.clear()


def _lock(path: str) -> None:
    if fcntl is None:
        return
    staging = os.path.join(path, f".{OWNER}-{os.getpid()}")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.rename(staging, os.path.join(path, OWNER))
    _held.append(descriptor)


def _remove(path: str, owner: int) -> None:
    if os.getpid() == owner:
        shutil.rmtree(path, ignore_errors=True)


def sweep() -> None:
    """Remove the folders of this user's processes that have ended without removing theirs."""
    if fcntl is None:
        return
    root = tempfile.gettempdir()
    try:
        entries = [entry for entry in os.scandir(root) if entry.name.startswith(PREFIX)]
    except OSError:
        return
    for entry in entries:
        path = os.path.join(root, entry.name)
        if path not in _made and _abandoned(path):
            shutil.rmtree(path, ignore_errors=True)


def _abandoned(path: str) -> bool:
    """Whether `path` is this user's folder (not a link) whose owner file no process holds."""
    try:
        status = os.lstat(path)
        if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid():
            return False
        descriptor = os.open(os.path.join(path, OWNER), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # (gone meanwhile, not readable, no owner file)
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # (held: its process, or a child of it, lives)
        return False
    finally:
        os.close(descriptor)
    return True
