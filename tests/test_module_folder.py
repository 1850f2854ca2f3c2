"""The folders of generated modules: each process's own, and those its killed workers leave.

A worker of `with multiprocessing.Pool(...)` is terminated (SIGTERM) as the block ends, before
its exit handlers run: each such worker left its folder and modules behind (a review of the
README's claims). A folder is now swept once no process holds its owner file's lock.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytest

from lossdsl import module_folder

pytestmark = pytest.mark.skipif(
    module_folder.fcntl is None or not hasattr(os, "fork") or sys.platform == "darwin",
    reason="file locks and fork as Linux has them",
)


@pytest.fixture(autouse=True)
def private_temporary_folder(tmp_path, monkeypatch):
    """Each test sweeps a temporary folder of its own (forked children inherit it), never the
    folders of another run of the tests or of another process of the user's."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    monkeypatch.setattr(module_folder, "_made", [])
    monkeypatch.setattr(module_folder, "_held", {})
    return root


def _make_folder_and_wait(paths, release) -> None:
    """In a worker: make a folder of one's own, say where, and wait for `release` (an Event), or
    for 60 s where it is None (a process to be killed must not wait on an Event: one killed
    while waiting leaves the Event's `set()` waiting for it for ever)."""
    module_folder.forget()  # (inherited from the parent where it had made one)
    path = module_folder.folder()
    Path(path, "lossdsl_generated_0.py").write_text("# a module\n")
    paths.put(path)
    if release is None:
        time.sleep(60)
    else:
        release.wait(60)


def _forked(context, target, *args):
    process = context.Process(target=target, args=args)
    with warnings.catch_warnings():
        # (Python 3.12: fork in a threaded process)
        warnings.simplefilter("ignore", DeprecationWarning)
        process.start()
    return process


def test_a_killed_processs_folder_is_swept_and_a_living_ones_kept():
    import multiprocessing

    context = multiprocessing.get_context("fork")
    paths, release = context.Queue(), context.Event()
    killed = _forked(context, _make_folder_and_wait, paths, None)
    living = None
    try:
        killed_path = paths.get(timeout=60)
        living = _forked(context, _make_folder_and_wait, paths, release)
        living_path = paths.get(timeout=60)
        unowned = tempfile.mkdtemp(prefix=module_folder.PREFIX)  # an older lossdsl's
        os.kill(killed.pid, signal.SIGKILL)
        killed.join(60)
        assert os.path.isfile(os.path.join(killed_path, "lossdsl_generated_0.py"))
        own = module_folder.folder()

        module_folder.sweep()

        assert not os.path.exists(killed_path)
        assert os.path.isfile(os.path.join(living_path, "lossdsl_generated_0.py"))
        assert os.path.isdir(unowned) and os.path.isdir(own)
        release.set()
        living.join(60)
        assert living.exitcode == 0 and not os.path.exists(living_path)
    finally:
        release.set()
        if killed.exitcode is None:
            killed.kill()


def test_a_folder_whose_lock_a_living_child_inherited_is_kept():
    # A child forked from a process that made a folder writes into that folder: it is not swept
    # while the child lives, even once its maker has gone.
    import multiprocessing

    context = multiprocessing.get_context("fork")
    paths, release = context.Queue(), context.Event()
    maker = _forked(context, _make_folder_and_inherit, paths, release)
    try:
        path = paths.get(timeout=60)
        child = paths.get(timeout=60)
        # (killed by SIGKILL, so its exit handlers do not run; not `join()`, which waits for the
        # grandchild too, as it holds the pipe that tells of its maker's end)
        for _ in range(600):
            if maker.exitcode is not None:
                break
            time.sleep(0.1)
        assert maker.exitcode == -signal.SIGKILL
        module_folder.sweep()
        assert os.path.isdir(path)
        assert _alive(child)
        release.set()
        for _ in range(600):  # (the grandchild is not ours to join: wait for its end)
            module_folder.sweep()
            if not os.path.exists(path):
                break
            time.sleep(0.1)
        assert not os.path.exists(path)
    finally:
        release.set()


def _make_folder_and_inherit(paths, release) -> None:
    module_folder.forget()
    paths.put(module_folder.folder())
    child = os.fork()
    if child == 0:
        release.wait(300)
        os._exit(0)
    paths.put(child)
    paths.close()
    paths.join_thread()  # (what was put is written before the end)
    os.kill(os.getpid(), signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _run(tmp_path, script: str, argument: str, root) -> list:
    """Run `script` with `argument` in a fresh interpreter whose temporary folder is `root`; the
    folders its last line names."""
    path = tmp_path / "script.py"
    path.write_text(script)
    proc = subprocess.run(
        [sys.executable, str(path), argument],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(root)},
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-4000:]
    paths = json.loads(proc.stdout.strip().splitlines()[-1])
    assert paths and all(p.startswith(str(root)) for p in paths)
    return paths


POOL = """
import json, multiprocessing, sys
from lossdsl import module_folder

def work(i):
    module_folder.forget()  # (a forked worker inherits the parent's; this parent made none)
    return module_folder.folder()

if __name__ == "__main__":
    with multiprocessing.get_context(sys.argv[1]).Pool(2) as pool:
        paths = pool.map(work, range(4), chunksize=1)
    print(json.dumps(sorted(set(paths))))
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_pools_terminated_workers_leave_no_folder_once_it_ends(
    tmp_path, private_temporary_folder, method
):
    # `with Pool(...)` terminates its workers (SIGTERM) as the block ends; the parent, which
    # imported lossdsl, removes their folders at its exit.
    paths = _run(tmp_path, POOL, method, private_temporary_folder)
    assert [p for p in paths if os.path.exists(p)] == []


UNCLOSED = """
import json, sys, time
if sys.argv[1] == "multiprocessing-first":
    import multiprocessing.util  # (as `import keras` imports it, before lossdsl)
import multiprocessing
import lossdsl
from lossdsl import module_folder

def work(i):
    module_folder.forget()
    return module_folder.folder()

if __name__ == "__main__":
    pool = multiprocessing.get_context("fork").Pool(2)
    print(json.dumps(sorted(set(pool.map(work, range(4), chunksize=1)))))
    for _ in range(2):
        pool.apply_async(time.sleep, (60,))  # still running at exit: terminated then
    time.sleep(0.5)
"""


@pytest.mark.parametrize("order", ["multiprocessing-first", "lossdsl-first"])
def test_an_unclosed_pools_workers_leave_no_folder_whatever_the_import_order(
    tmp_path, private_temporary_folder, order
):
    # multiprocessing's exit handler terminates the workers; where it was registered after
    # lossdsl's (Keras imports multiprocessing first), it ran after the sweep, which found the
    # workers alive (a review)
    paths = _run(tmp_path, UNCLOSED, order, private_temporary_folder)
    assert [p for p in paths if os.path.exists(p)] == []


def test_a_file_system_that_refuses_locks_leaves_a_folder_unlocked_and_kept(
    monkeypatch,
):
    # NFS without its lock daemon (ENOLCK): the first loss raised OSError, and each try left a
    # folder behind (a review)
    import errno

    def refuse(descriptor, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(module_folder.fcntl, "flock", refuse)
    path = module_folder.write("lossdsl_generated_0.py", "# a module\n")
    assert os.listdir(os.path.dirname(path)) == ["lossdsl_generated_0.py"]  # (no owner)
    assert module_folder._held == {}
    monkeypatch.undo()  # (the fixture's private folder too: sweep it by name)
    module_folder.forget()
    module_folder.sweep()
    assert os.path.isfile(path) and not module_folder._abandoned(os.path.dirname(path))


def test_a_closed_lock_is_taken_again_and_a_removed_folder_made_again():
    # A daemon's `closerange` closed the descriptor it inherited, and a sweep removed the folder
    # of a living process (a review)
    first = module_folder.folder()
    descriptor = module_folder._held[first][0]
    os.close(descriptor)
    assert module_folder.folder() == first
    assert module_folder._held[first][0] != descriptor or module_folder._still_held(
        first
    )
    assert not module_folder._abandoned(first)
    shutil.rmtree(first)  # as a `/tmp` cleaner removes it
    path = module_folder.write("lossdsl_generated_1.py", "# a module\n")
    assert os.path.dirname(path) != first and os.path.isfile(path)


def test_a_child_that_locks_again_keeps_its_parents_folder_locked():
    # A forked child that had closed the descriptor it inherited (a daemon's `closerange`) locked
    # the shared folder again by renaming its owner file over the parent's: once the child ended,
    # the living parent's folder was swept (a second review)
    path = module_folder.folder()
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", DeprecationWarning
        )  # (Python 3.12: fork, threads)
        child = os.fork()
    if child == 0:
        code = 2
        try:
            os.close(module_folder._held[path][0])
            code = 0 if module_folder.folder() == path else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    owners = sorted(n for n in os.listdir(path) if n.startswith("owner-"))
    assert owners == sorted([f"owner-{os.getpid()}", f"owner-{child}"])
    assert not module_folder._abandoned(
        path
    )  # (the parent's lock holds, the child's is free)


def test_a_module_file_appears_whole():
    # Forked processes sharing a folder and building the same loss at once: one truncated the file
    # the other was importing (a second review). A reader of the file before keeps what it read.
    path = module_folder.write("lossdsl_generated_2.py", "# first\n" * 1000)
    with open(path, encoding="utf-8") as reading:
        path_again = module_folder.write("lossdsl_generated_2.py", "# second\n")
        assert path_again == path
        assert reading.read() == "# first\n" * 1000
    with open(path, encoding="utf-8") as reading:
        assert reading.read() == "# second\n"
    assert sorted(os.listdir(os.path.dirname(path))) == [
        "lossdsl_generated_2.py",
        f"owner-{os.getpid()}",
    ]


def test_a_sweep_never_raises(monkeypatch):
    def unusable():
        raise FileNotFoundError("No usable temporary directory found")

    monkeypatch.setattr(tempfile, "gettempdir", unusable)
    assert module_folder.sweep() is None
