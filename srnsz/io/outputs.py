"""Writing outputs: a file appears whole or not at all, with the permissions the umask gives; what is not a file
(a terminal, /dev/null, a fifo, /dev/stdout on a pipe) is written into, never replaced; a directory is refused, and
so is an input of the command (the same file by any name), even with ``force``.

A regular file (or one to be created) is written to a temporary file beside it (``.<name>.<random>.part<suffix>``:
writers that choose their format by the suffix still see it) and renamed over it only once written; a symbolic link
is followed, so the file it points to is replaced and the link kept. A character device or fifo is written through
a temporary file elsewhere and then copied into, as a stream; a block device likewise, with ``force`` only (it holds
data). Any failure or interruption removes the temporary file.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from srnsz.errors import InvalidInputError, SrnszError

COPY_BLOCK = 1 << 20


@dataclass(frozen=True)
class Output:
    """Where an output goes: ``target`` (the path, its symbolic links followed) and what is there now: ``absent``,
    ``file`` (a regular file), ``stream`` (a character device or fifo: written into), ``device`` (a block device:
    written into, with force), ``directory`` or ``other`` (a socket)."""

    path: Path
    target: Path
    kind: str


def inspect_output(path: str | Path) -> Output:
    """What ``path`` is as an output (see :class:`Output`)."""
    path = Path(path)
    # A file's target is its real path (the temporary file goes beside it); a stream or device is opened by the
    # path given, since realpath turns /dev/stdout on a pipe into /proc/PID/fd/pipe:[N], which cannot be opened.
    target = Path(os.path.realpath(path))
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return Output(path, target, "absent")
    if stat.S_ISREG(mode):
        kind = "file"
    elif stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        kind = "stream"
    elif stat.S_ISBLK(mode):
        kind = "device"
    elif stat.S_ISDIR(mode):
        kind = "directory"
    else:
        kind = "other"
    return Output(path, target if kind in ("file", "directory") else path, kind)


def refuse_existing(path: str | Path, force: bool, inputs: Sequence[str | Path | None] = ()) -> Output:
    """Raise unless ``path`` can take an output: absent, a stream (device or fifo), or, with ``force``, a file or
    block device to overwrite, and in no case one of ``inputs`` (by any name or link), which the output would
    replace. Returns what it is."""
    out = inspect_output(path)
    if out.kind in ("file", "device"):
        for source in inputs:
            if source is not None and _same_file(out.target, source):
                raise InvalidInputError(f"output {str(path)!r} is the input {str(source)!r}; give another output")
    if out.kind == "directory":
        raise SrnszError(f"output {str(path)!r} is a directory; give a file name")
    if out.kind == "other":
        raise SrnszError(f"output {str(path)!r} is a socket or another special file that cannot be written")
    if out.kind in ("file", "device") and not force:
        raise SrnszError(f"output {str(path)!r} exists; use --force to overwrite it")
    return out


def _same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` both exist and are one file (hard links and symbolic links included)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def umask() -> int:
    """The process's umask (read without changing it where /proc tells it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and put back at once
    os.umask(mask)
    return mask


def write_atomically(path: str | Path, write: Callable[[Path], None], force: bool) -> int:
    """Call ``write(tmp)`` on a temporary file and put the result at ``path`` only on success (see the module's
    description): renamed over a regular file (which keeps its permissions) or to a new one (0666 less the
    umask), copied into a stream. Refuses a directory, and an existing file unless ``force``; never leaves a partial
    file behind. Returns the bytes written."""
    out = refuse_existing(path, force)
    if out.kind in ("stream", "device"):
        return _write_into(out, write)
    if not out.target.parent.is_dir():
        raise InvalidInputError(f"output directory {str(out.target.parent)!r} does not exist")
    mode = stat.S_IMODE(os.stat(out.target).st_mode) if out.kind == "file" else 0o666 & ~umask()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.target.name}.", suffix=f".part{out.target.suffix}",
                                    dir=out.target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        size = tmp.stat().st_size
        os.chmod(tmp, mode)
        os.replace(tmp, out.target)
        return size
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_into(out: Output, write: Callable[[Path], None]) -> int:
    """``write`` to a temporary file elsewhere (a device or fifo cannot be seeked or mapped), then copy it in."""
    with tempfile.TemporaryDirectory(prefix="srnsz-") as work:
        tmp = Path(work) / f"output{out.target.suffix}"
        write(tmp)
        with open(tmp, "rb") as src, open(out.target, "r+b" if out.kind == "device" else "wb") as dst:
            shutil.copyfileobj(src, dst, COPY_BLOCK)
        return tmp.stat().st_size


def write_folder(path: str | Path, force: bool, write: Callable[[Path], None],
                 replaceable: Callable[[Path], bool]) -> None:
    """``write(tmp)`` into a fresh folder beside ``path``, moved into place only on success (0777 less the
    umask). An existing ``path`` is replaced only with ``force``, and only when ``replaceable(path)`` says it is
    what this writes (a folder of something else is never removed)."""
    path = Path(path)
    out = inspect_output(path)
    if out.kind != "absent" and not force:
        raise SrnszError(f"output {str(path)!r} exists; use --force to overwrite it")
    if out.kind == "directory" and not replaceable(out.target):
        raise SrnszError(f"output {str(path)!r} is a folder of something else: not replacing it")
    if out.kind not in ("absent", "file", "directory"):
        raise SrnszError(f"output {str(path)!r} is a device, fifo or socket; a folder is written here")
    if not out.target.parent.is_dir():
        raise InvalidInputError(f"output directory {str(out.target.parent)!r} does not exist")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.target.name}.", suffix=".part", dir=out.target.parent))
    try:
        os.chmod(tmp, 0o777 & ~umask())
        write(tmp)
        if out.kind == "directory":
            shutil.rmtree(out.target)
        elif out.kind == "file":
            out.target.unlink()
        os.replace(tmp, out.target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
