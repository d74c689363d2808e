"""One writer per output: an advisory lock beside each target, and clean-up after dead writers.

A writer takes ``.NAME.lock`` (``fcntl.flock``) in the target's directory before any work and
holds it until its output is renamed into place. The lock file records the holder's pid and
host, so a second writer can name them. The kernel drops a lock when its process dies (even by
``kill -9``), so a lock file left behind is simply taken over by the next writer, which says so.

Temporaries are named ``.NAME.tmp-PID@HOST-XXXXXXXX`` (``.old-`` for a replaced store on its
way out), so the next writer in the same directory can tell those of a dead process and remove
them. Notes about what was cleaned up go to the ``data_catalog.locks`` logger (warnings reach
stderr when the application configures no logging).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from data_catalog.errors import DataInputError

log = logging.getLogger(__name__)

WAIT_ENV = "CLIMATE_OPTICS_WAIT"  # "1": wait for a busy target instead of failing
HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "localhost"
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)@(?P<host>[A-Za-z0-9.-]+)-[0-9a-f]{8}$")
_LEGACY_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-[0-9a-f]{8}$")  # before owners were recorded


class TargetBusyError(DataInputError):
    """Another process holds the lock of the output this process was asked to write."""


@dataclass
class _Held:
    fd: int
    inode: int
    run: bool = False  # a run directory (``holding``): it keeps what was finished, unlike an atomic output


_held: dict[tuple[str, int], _Held] = {}  # (absolute target path, thread id) -> its lock, in this process
_guard = threading.Lock()
_wait_default = False


def set_wait(wait: bool) -> None:
    """Make writers in this process wait for a busy target (the CLI's ``--wait``)."""
    global _wait_default
    _wait_default = bool(wait)


def lock_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.lock")


def temporary_path(target: Path, kind: str = "tmp") -> Path:
    """A fresh sibling name for ``target`` that records this process as its owner."""
    return target.with_name(f".{target.name}.{kind}-{os.getpid()}@{HOST}-{uuid.uuid4().hex[:8]}")


def held_targets(*, runs: bool = False) -> list[Path]:
    """Atomic outputs this process holds the lock of (what an interrupted command was writing and leaves
    unwritten); with ``runs=True`` the run directories it holds instead (they keep what was finished)."""
    with _guard:
        return list(dict.fromkeys(Path(path) for (path, _), held in _held.items() if held.run == runs))


def _key(target: Path) -> tuple[str, int]:
    """Locks belong to a thread: another thread of this process is one more writer, refused or waiting."""
    return str(target.absolute()), threading.get_ident()


def _read_holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return "an unknown process"
    if len(text) >= 2 and text[0].isdigit():
        return f"pid {text[0]} on host {text[1]}"
    return "a process that has not yet recorded its pid"


def acquire(target: Path, *, wait: bool | None = None) -> bool:
    """Lock ``target`` for this thread; False when it already holds it. Busy: TargetBusyError or wait."""
    key = _key(target)
    with _guard:
        if key in _held:
            return False
    if wait is None:
        wait = _wait_default or os.environ.get(WAIT_ENV) == "1"
    path = lock_path(target)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DataInputError(
                f"cannot create its lock file {path.name} ({exc.strerror}); expected a writable directory",
                source=target,
            ) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise TargetBusyError(
                        f"another climate-optics process ({_read_holder(path)}) is writing this output;"
                        " wait for it to finish, or pass --wait to queue behind it",
                        source=target,
                    ) from None
                log.warning("%s: waiting for %s to finish writing it", target, _read_holder(path))
                fcntl.flock(fd, fcntl.LOCK_EX)
            inode = os.fstat(fd).st_ino
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            if current != inode:  # the previous holder removed the file as we waited on it: lock anew
                os.close(fd)
                continue
        except BaseException:
            os.close(fd)
            raise
        break
    previous = os.pread(fd, 256, 0).decode("utf-8", "replace").split()
    if previous and previous[0].isdigit() and int(previous[0]) != os.getpid():
        log.warning(
            "%s: took over the lock left by pid %s on host %s (no longer running)",
            target,
            previous[0],
            previous[1] if len(previous) > 1 else "?",
        )
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {HOST}\n".encode(), 0)
    with _guard:
        _held[key] = _Held(fd, inode)
    remove_stale_temporaries(target.parent, own_target=target)
    return True


@contextlib.contextmanager
def holding(target: str | os.PathLike, *, wait: bool | None = None) -> Iterator[Path]:
    """Hold ``target``'s lock for the block: a run directory written over many steps (its parent is created).

    A second writer is refused (``TargetBusyError``) or waits, as in ``acquire``; a block nested in one
    that already holds the lock (the same thread) neither takes nor drops it.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    newly = acquire(target, wait=wait)
    if newly:
        with _guard:
            _held[_key(target)].run = True
    try:
        yield target
    finally:
        if newly:
            release(target)


def release(target: Path) -> None:
    """Drop this process's lock of ``target`` (and its lock file); nothing if not held."""
    with _guard:
        held = _held.pop(_key(target), None)
    if held is None:
        return
    path = lock_path(target)
    try:
        if os.stat(path).st_ino == held.inode:
            os.unlink(path)  # under the lock: a waiter re-checks the inode and locks the new file
    except FileNotFoundError:
        pass
    finally:
        os.close(held.fd)


def release_all() -> None:
    """Drop every lock this thread holds (the end of a command)."""
    with _guard:
        mine = [Path(path) for path, thread in _held if thread == threading.get_ident()]
    for target in mine:
        release(target)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lock_free(target: Path) -> bool:
    """True when nobody holds ``target``'s lock (checked without creating a lock file)."""
    if any(path == str(target.absolute()) for path, _ in _held):
        return False
    try:
        fd = os.open(lock_path(target), os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    finally:
        os.close(fd)


def remove_stale_temporaries(directory: Path, *, own_target: Path | None = None) -> list[Path]:
    """Remove temporaries in ``directory`` whose writer is gone; returns what was removed.

    Gone: a process of this host that no longer runs, and nobody holds its target's lock. Old-style
    temporaries without an owner are removed only for ``own_target`` (whose lock this process holds).
    """
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = _TEMPORARY.match(name)
        if match:
            pid, host = int(match["pid"]), match["host"]
            if host != HOST or pid == os.getpid() or _process_alive(pid):
                continue
            owner = f"pid {pid} on host {host}"
        elif own_target is not None and (legacy := _LEGACY_TEMPORARY.match(name)) and legacy["name"] == own_target.name:
            match, owner = legacy, "an earlier run"
        else:
            continue
        ours = own_target is not None and match["name"] == own_target.name  # its lock is this process's
        if not ours and not _lock_free(directory / match["name"]):
            continue
        path = directory / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        log.warning("removed %s, a temporary left by %s (no longer running)", path, owner)
        removed.append(path)
    return removed
