"""The private folder where `runtime` writes the generated modules it imports.

Each process that makes a new loss class makes one folder (`tempfile.mkdtemp`, `lossdsl-*`) and
removes it at its exit. Only the process that made a folder removes it: a child forked from it
that exits normally runs the exit handlers it inherited, and removed its parent's folder (a
review), and a folder that has gone (a `/tmp` cleaned by age, too) is made again.

A process killed before its exit handlers run (SIGKILL, or SIGTERM as `multiprocessing.Pool`'s
`terminate()` sends its workers, which `with Pool(...)` does on leaving the block) cannot remove
its folder: each worker of such a pool left its folder and modules behind (a review of the
README's claims). So each folder holds an owner file, `owner-<pid>`, locked (`fcntl.flock`) for
as long as its maker, or a child that inherited the lock, lives: the kernel lets go of the lock
when they have all ended, however they ended. `sweep()` removes this user's folders whose owner
files' locks it can all take. It runs when a process makes its folder, and at the exit of a
process that imported lossdsl and `multiprocessing`, so that a pool's parent removes its
terminated workers' folders as it ends.

An owner file is locked under a temporary name and then renamed, so a sweep never sees one
unlocked. A sweep leaves alone a folder being made (no owner file yet), one made by an older
lossdsl, one where the file system refused the lock (NFS without its lock daemon), and every
folder where `fcntl` is missing (Windows). A process that closed the descriptor it inherited (a
daemon's `closerange`) locks the folder again at its next new loss, with an owner file of its
own (renamed over its parent's, it let the parent's folder be swept: a second review). A module
written into a folder removed meanwhile goes into a new one (`write`). Sweeps never raise.
"""

from __future__ import annotations

import atexit
import contextlib
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
# Each folder's locked owner file: its descriptor, device, inode and name, held open for as long
# as the process lives (and by its forked children, who inherit it).
_held: dict[str, tuple[int, int, int, str]] = {}


def folder() -> str:
    """This process's folder of generated modules, made at first use and again if it has gone.

    A child forked from a process that made one writes into its parent's folder."""
    if _made and os.path.isdir(_made[-1]):
        path = _made[-1]
        if path in _held and not _still_held(path):
            # (a daemon's `closerange` closed the descriptor it inherited: a lock of its own)
            _let_go(path)
            _lock(path)
        return path
    for gone in list(_held):  # (gone, or a parent's that a forked child forgot)
        _let_go(gone)
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
    return path


def write(name: str, text: str) -> str:
    """Write `text` to the file `name` in this process's folder; its path. The file appears
    whole (written under another name, then renamed): forked processes that share a folder and
    build the same loss at once imported a file the other was writing (a review). A folder
    removed meanwhile (by a `/tmp` cleaner, or a sweep that found its lock let go) is made again."""
    try:
        return _write_once(name, text)
    except FileNotFoundError:  # the folder went: `folder()` makes it again
        return _write_once(name, text)


def _write_once(name: str, text: str) -> str:
    path = os.path.join(folder(), name)
    staging = f"{path}.{os.getpid()}.tmp"
    with open(staging, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(staging, path)
    return path


def forget() -> None:
    """Let this process make a folder of its own at its next new loss (a forked child that
    should not share its parent's)."""
    _made.clear()


def _lock(path: str) -> None:
    """Lock a new owner file of this process's (`owner-<pid>`), then give it its name: a sweep
    never sees an unlocked owner file, and a process that shares the folder (a forked child
    locking again) never replaces another's. Where the file system refuses locks (NFS without
    its lock daemon: ENOLCK), the folder stays unlocked and has no owner file, which no sweep
    removes."""
    if fcntl is None:
        return
    name = f"{OWNER}-{os.getpid()}"
    staging = os.path.join(path, f".{name}")
    try:
        descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError:
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        status = os.fstat(descriptor)
        os.rename(staging, os.path.join(path, name))
    except OSError:
        os.close(descriptor)
        with contextlib.suppress(OSError):
            os.unlink(staging)
        return
    _held[path] = (descriptor, status.st_dev, status.st_ino, name)


def _still_held(path: str) -> bool:
    """Whether the descriptor held for `path` is still open on its owner file."""
    descriptor, device, inode, name = _held[path]
    try:
        held = os.fstat(descriptor)
        named = os.stat(os.path.join(path, name))
    except OSError:
        return False
    return (held.st_dev, held.st_ino) == (device, inode) == (named.st_dev, named.st_ino)


def _let_go(path: str) -> None:
    """Close the descriptor held for a folder no longer in use, if it is still the one opened."""
    descriptor, device, inode, _ = _held.pop(path)
    with contextlib.suppress(OSError):
        held = os.fstat(descriptor)
        if (held.st_dev, held.st_ino) == (device, inode):
            os.close(descriptor)


def _remove(path: str, owner: int) -> None:
    if os.getpid() == owner:
        shutil.rmtree(path, ignore_errors=True)


def sweep_at_exit() -> None:
    """`sweep()` at the exit of a process, once its pools' workers have ended.

    `multiprocessing`'s exit handler terminates and joins the daemonic children (an unclosed
    pool's workers); where it was registered after the caller's (Keras imports it before
    lossdsl), it runs after it, and the workers still held their locks: here the sweep goes
    last among its finalizers then."""
    util = sys.modules.get("multiprocessing.util")
    if util is not None and getattr(util, "_exiting", True) is False:
        util.Finalize(None, sweep, exitpriority=-1)
    else:
        sweep()


def sweep() -> None:
    """Remove the folders of this user's processes that have ended without removing theirs.
    Never raises: it runs at exit and before a new loss, where an error is not the user's."""
    if fcntl is None:
        return
    try:
        root = tempfile.gettempdir()
        entries = [
            entry.name for entry in os.scandir(root) if entry.name.startswith(PREFIX)
        ]
    except Exception:  # noqa: BLE001 - (no usable temporary folder, or not readable)
        return
    for name in entries:
        path = os.path.join(root, name)
        if path not in _made and _abandoned(path):
            shutil.rmtree(path, ignore_errors=True)


def _abandoned(path: str) -> bool:
    """Whether `path` is this user's folder (not a link) with owner files, none of which a process
    holds."""
    try:
        status = os.lstat(path)
        if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid():
            return False
        owners = [n for n in os.listdir(path) if n.startswith(OWNER + "-")]
    except OSError:  # (gone meanwhile, not readable)
        return False
    return bool(owners) and all(_free(os.path.join(path, n)) for n in owners)


def _free(owner: str) -> bool:
    """Whether no process holds the lock of the owner file `owner`."""
    try:
        descriptor = os.open(owner, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # (gone meanwhile: its folder is being removed, or not readable)
        return False
    try:
        # (shared: NFS's emulation of flock takes it on a file opened for reading)
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:  # (held: its process, or a child of it, lives)
        return False
    finally:
        os.close(descriptor)
    return True
