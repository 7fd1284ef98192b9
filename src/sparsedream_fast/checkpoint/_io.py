"""Reading and writing the ``.npz`` files of checkpoints: atomically, and without pickles.

Writing goes to a temporary file in the target's folder, which is flushed and fsynced and
then renamed over the target (``os.replace``, atomic on POSIX and Windows), and the folder
is fsynced where the OS allows: at every moment the target is either the old file, whole,
or the new one, whole. A write that fails part way removes its temporary file.

Reading never unpickles and checks each member's header (dtype, shape, size against the
archive's record of the member) before it allocates or reads the data, so a crafted header
cannot make it allocate more than the file holds.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import zipfile
import zlib

import numpy as np
from numpy.lib import format as npy_format

__all__ = ["CheckpointError", "write_npz", "NpzReader"]

#: what the readers of a damaged archive raise, besides ValueError
_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError,
                RuntimeError, KeyError, ValueError, TypeError, OverflowError, MemoryError)


class CheckpointError(ValueError):
    """A file that is not a readable checkpoint of the expected model (missing, damaged or
    inconsistent contents); the message names the file and, where one is at fault, the key."""


def _fsync_folder(folder: str) -> None:
    """Make the rename durable; not every OS or file system lets a folder be opened or synced."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_npz(path: str, arrays: dict) -> None:
    """Write ``arrays`` (name -> ndarray, no object dtypes) as an uncompressed ``.npz`` at
    ``path``, atomically (see the module docstring). Raises before touching ``path`` when an
    array cannot be stored without pickles."""
    for key, a in arrays.items():
        if not isinstance(a, np.ndarray) or a.dtype.hasobject:
            raise TypeError(f"checkpoint key {key!r}: only numeric and text arrays are stored (no pickles), "
                            f"got {type(a).__name__} {getattr(a, 'dtype', '')}")
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # 0o666 and the umask, as open() gives a new file (mkstemp would make it private)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                for key, a in arrays.items():
                    with zf.open(key + ".npy", "w", force_zip64=True) as member:
                        npy_format.write_array(member, a, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


class NpzReader:
    """The arrays of an ``.npz`` archive, read one at a time and checked first.

    Parameters
    ----------
    path : str
        An existing file.

    Raises
    ------
    CheckpointError
        The file is not a zip archive of ``.npy`` members.
    """

    def __init__(self, path: str):
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path)
            infos = self._zip.infolist()
        except _READ_ERRORS as exc:
            raise CheckpointError(f"{path} is not a readable checkpoint (not an .npz archive: {exc})") from None
        self._members = {i.filename[:-4]: i for i in infos if i.filename.endswith(".npy")}

    def close(self) -> None:
        """Close the archive."""
        self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def keys(self) -> list:
        """The names of the arrays held."""
        return list(self._members)

    def __contains__(self, key) -> bool:
        return key in self._members

    def _error(self, key, msg) -> CheckpointError:
        return CheckpointError(f"{self.path}: checkpoint key {key!r}: {msg}")

    def _open(self, key):
        if key not in self._members:
            raise self._error(key, "missing")
        info = self._members[key]
        f = self._zip.open(info)
        version = npy_format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = npy_format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unknown .npy format version {version}")
        return f, info, shape, fortran, dtype

    def header(self, key) -> tuple:
        """``(shape, dtype)`` of an array, from its header only."""
        try:
            f, _, shape, _, dtype = self._open(key)
            f.close()
        except CheckpointError:
            raise
        except _READ_ERRORS as exc:
            raise self._error(key, f"unreadable header ({type(exc).__name__}: {exc})") from None
        return tuple(shape), dtype

    def array(self, key) -> np.ndarray:
        """The array ``key``, C-contiguous, native byte order.

        Raises CheckpointError (a ValueError) naming the key when it is missing, would need
        pickle, or does not hold the data its header announces.
        """
        try:
            f, info, shape, fortran, dtype = self._open(key)
            with f:
                if dtype.hasobject:
                    raise self._error(key, f"dtype {dtype} would need pickle; checkpoints never unpickle")
                count = 1
                for s in shape:
                    count *= int(s)
                if count * dtype.itemsize > info.file_size:
                    raise self._error(key, f"header announces shape {shape} of {dtype}, more than the "
                                           f"{info.file_size} bytes stored")
                f.seek(0)
                a = npy_format.read_array(f, allow_pickle=False)
        except CheckpointError:
            raise
        except _READ_ERRORS as exc:
            raise self._error(key, f"unreadable ({type(exc).__name__}: {exc})") from None
        if not a.dtype.isnative:
            a = a.astype(a.dtype.newbyteorder("="))
        return a if a.flags.c_contiguous else a.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)
