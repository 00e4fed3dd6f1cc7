"""The IDX file format (MNIST's) and a reader that checks every byte of it.

An IDX file is a tiny header followed by a C-order array (all integers big-endian)::

    bytes 0-1    00 00
    byte  2      dtype code: 08 ubyte, 09 sbyte, 0B int16, 0C int32, 0D float32, 0E float64
    byte  3      ndim (at least 1)
    4 * ndim     the dimensions, one uint32 each, none zero
    the rest     prod(dims) items, exactly: a short or a long file is an error

The file may be gzip-compressed; that is told from its first two bytes (1f 8b), not its name.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["DataError", "read_idx", "FIX_FILE"]


class DataError(ValueError):
    """A data file or folder is missing, malformed or could not be fetched.

    The message names the file (or argument), says what was wrong and what to do.
    """


_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
FIX_FILE = ("delete it and download again, or pass --data-dir to a folder with the four "
             "MNIST IDX files")


def _read_bytes(path: Path) -> tuple[bytes, bool]:
    """The file's contents, gunzipped if it starts with the gzip magic; and whether it did."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; pass --data-dir to a folder with the four "
                        "MNIST IDX files") from None
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err}); check that it is a "
                        f"readable file, or {FIX_FILE}") from None
    if raw[:2] != _GZIP_MAGIC:
        return raw, False
    try:
        return gzip.decompress(raw), True
    except (OSError, EOFError, zlib.error) as err:     # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: corrupt gzip stream ({err}); {FIX_FILE}") from None


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file, gzip-compressed or raw, into an array of shape ``dims``.

    The dtype is the header's, in native byte order (``uint8`` for MNIST images and labels).
    Raises ``DataError`` naming the file for a missing or unreadable file, a corrupt gzip
    stream, a bad magic number or dtype code, zero dimensions, or a length that does not
    match the header exactly (truncated or trailing bytes).
    """
    path = Path(path)
    data, gzipped = _read_bytes(path)
    where = " after gunzip" if gzipped else ""

    def bad(what: str) -> DataError:
        return DataError(f"{path}: {what}; {FIX_FILE}")

    if len(data) < 4:
        raise bad(f"only {len(data)} bytes{where}, too short for the 4-byte IDX magic number")
    if data[:2] != b"\0\0":
        raise bad(f"not an IDX file: magic number {data[:4].hex(' ')}, expected "
                  "00 00 <dtype code> <ndim>")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise bad(f"unknown IDX dtype code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise bad("IDX header has 0 dimensions; at least 1 is needed")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise bad(f"truncated header: {ndim} dimensions need {header} bytes, "
                  f"the file has {len(data)}{where}")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if 0 in dims:
        raise bad(f"dimension {dims.index(0)} is zero (shape {dims}); every dimension must be >= 1")
    dtype = _IDX_DTYPES[code]
    expected = header + math.prod(dims) * dtype.itemsize
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "trailing bytes"
        raise bad(f"{kind}: shape {dims} of {dtype.name} needs {expected} bytes, "
                  f"the file has {len(data)}{where}")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))          # a writable native-endian copy
