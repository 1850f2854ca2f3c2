"""The folders of generated modules: each process's own, and those its killed workers leave.

A worker of `with multiprocessing.Pool(...)` is terminated (SIGTERM) as the block ends, before
its exit handlers run: each such worker left its folder and modules behind (a review of the
README's claims). A folder is now swept once no process holds its owner file's lock.
"""

from __future__ import annotations

import json
import os
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


def test_a_killed_processs_folder_is_swept_and_a_living_ones_kept(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("fork")
    paths, release = context.Queue(), context.Event()
    killed = _forked(context, _make_folder_and_wait, paths, None)
    killed_path = paths.get(timeout=60)
    living = _forked(context, _make_folder_and_wait, paths, release)
    living_path = paths.get(timeout=60)
    unowned = tempfile.mkdtemp(
        prefix=module_folder.PREFIX
    )  # as an older lossdsl made them
    try:
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
        os.rmdir(unowned)


def test_a_folder_whose_lock_a_living_child_inherited_is_kept():
    # A child forked from a process that made a folder writes into that folder: it is not swept
    # while the child lives, even once its maker has gone.
    import multiprocessing

    context = multiprocessing.get_context("fork")
    paths, release = context.Queue(), context.Event()
    maker = _forked(context, _make_folder_and_inherit, paths, release)
    path = paths.get(timeout=60)
    child = paths.get(timeout=60)
    try:
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
def test_a_pools_terminated_workers_leave_no_folder_once_it_ends(tmp_path, method):
    # `with Pool(...)` terminates its workers (SIGTERM) as the block ends; the parent, which
    # imported lossdsl, removes their folders at its exit.
    script = tmp_path / "pool.py"
    script.write_text(POOL)
    proc = subprocess.run(
        [sys.executable, str(script), method],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    paths = json.loads(proc.stdout.strip().splitlines()[-1])
    assert paths and all(p.startswith(tempfile.gettempdir()) for p in paths)
    assert [p for p in paths if os.path.exists(p)] == []
