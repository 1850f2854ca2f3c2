"""Output files written whole or not at all (the command line's `-o`, `lossdsl docs`, plots).

Each is written to a temporary file beside its target, then moved onto it, so a
failure part way leaves the old file or none, never a partial one; the file
gets the mode `open()` would give it, and a file `open()` may not write is refused as
`open()` refuses it. A symbolic link is written through, and
a device or FIFO written directly, as `open()` writes them.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def write_atomically(
    path: Path, write: Callable[[IO], None], binary: bool = False
) -> None:
    """Call `write(handle)` on a temporary file beside `path`, then move the file onto `path`.

    As `open()` would: through a symbolic link (onto the file it names, the link kept), and into
    what is not a regular file (`/dev/null`, a FIFO) directly, which a move would replace.
    """
    if (
        path.exists() and not path.is_file() and not path.is_dir()
    ):  # through links: /dev/stdout
        with (
            open(path, "wb")
            if binary
            else open(path, "w", encoding="utf-8", newline="") as handle
        ):
            write(handle)
        return
    named, path = path, Path(os.path.realpath(path))
    if path.is_file() and not os.access(path, os.W_OK):
        # the move needs only the folder's permission: a file the user may not write was replaced,
        # where `open()` and the shell's `>` refuse (a review); refused with the system's reason
        # (a read-only file system's is not "Permission denied"), found by opening it to write,
        # which changes nothing (no truncation)
        try:
            os.close(os.open(path, os.O_WRONLY))
        except OSError as err:
            raise OSError(err.errno, err.strerror, str(named)) from None
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(named))
    # A short name of its own: the target's name in it ran past the system's limit of 255 bytes
    # for a name that was within it (`-o` of 245 characters; a review).
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".lossdsl-", suffix=".tmp")
    try:
        with (
            os.fdopen(fd, "wb")
            if binary
            else os.fdopen(fd, "w", encoding="utf-8", newline="") as handle
        ):
            write(handle)
        os.chmod(temporary, _mode_for(path))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """`text` into `path`, UTF-8, whole or not at all."""
    write_atomically(path, lambda handle: handle.write(text))


def _mode_for(path: Path) -> int:
    """The mode `open()` would give `path`: an existing file's own, else 0o666 less the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
