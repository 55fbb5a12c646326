"""Files written whole or not at all: what every result file of simsys is written with.

A run directory, a sweep's parts and a report are read by people and by resumed sweeps; a
crash, Ctrl-C or a full disk must never leave one half written. Each is written to a fresh
temporary file in its own directory — made by :func:`tempfile.mkstemp`, so with O_EXCL under a
random name and never through a symlink someone left at a fixed name — flushed to the disk,
then renamed over the target, which readers see change in one step.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import SimsysError


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to fill a temporary file, then make it ``path``; returns ``path``.

    Raises
    ------
    SimsysError
        When the directory cannot be written (no such directory, not a directory, no room,
        no permission): a user's choice of place, reported as bad input.
    """
    path = Path(path)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise SimsysError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise SimsysError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def leftovers(directory: Path) -> list[Path]:
    """Temporary files a killed writer left in ``directory`` (safe to delete)."""
    return [p for p in directory.glob("*.tmp") if p.is_file() or p.is_symlink()]
