"""Atomic file and folder writes: a crash, a full disk or a bad value half-way never leaves half a file.

    with atomic_write("vectors.txt", "w", encoding="utf-8") as f:   # temp file in the same folder + os.replace
        f.write(...)
    with atomic_folder("averaged") as tmp:                          # temp folder beside it, swapped in at the end
        model.save_pretrained(tmp)

The temporary file lives in the destination's folder (same file system, so `os.replace` is atomic) and is removed
when the block raises; the previous file, if any, is then left exactly as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator

from transformers.utils import logging

logger = logging.get_logger(__name__)


def _temp_name(path: str, kind: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", *, encoding: str | None = None, fsync: bool = True,
                 **open_kwargs) -> Iterator:
    """Open a temporary file beside `path` for writing; on a clean exit it replaces `path` in one `os.replace`.

    `mode` is "w" (text; pass `encoding`, default UTF-8) or "wb". On an exception the temporary file is removed and
    `path` keeps its old content (or stays absent). The file gets the permissions a plain `open` would give it."""
    if mode not in ("w", "wb", "wt"):
        raise ValueError(f"atomic_write writes a whole new file: mode must be 'w' or 'wb', got {mode!r}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {path!r}: folder {folder!r} does not exist")
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    tmp = _temp_name(path, "tmp")
    # "x": the name is fresh; a plain open (not mkstemp) keeps the umask's permissions instead of 0600
    f = open(tmp, mode.replace("w", "x"), encoding=encoding, **open_kwargs)
    try:
        yield f
        f.flush()
        if fsync:
            os.fsync(f.fileno())
        f.close()
        os.replace(tmp, path)
    except BaseException:
        f.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[str]:
    """Yield an empty temporary folder beside `path`; on a clean exit it takes `path`'s place (a previous folder of
    that name is moved aside, then deleted). On an exception the temporary folder is deleted and `path` is untouched.

    The swap is two renames: a crash between them leaves the previous folder under a hidden `.<name>.old-*` name and
    `path` absent, never a half-written `path`."""
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = _temp_name(path, "tmp")
    os.mkdir(tmp)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if os.path.lexists(path):
        if not os.path.isdir(path) or os.path.islink(path):
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileExistsError(f"{path!r} exists and is not a folder; not replacing it")
        old = _temp_name(path, "old")
        os.rename(path, old)
    os.rename(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_json_atomic(path: str | os.PathLike, data, **dump_kwargs) -> None:
    """`json.dump(data)` (indent 2 unless given) through `atomic_write`, creating the folder if needed."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    dump_kwargs.setdefault("indent", 2)
    with atomic_write(path, "w", encoding="utf-8") as f:
        json.dump(data, f, **dump_kwargs)
        f.write("\n")


__all__ = ["atomic_folder", "atomic_write", "write_json_atomic"]
