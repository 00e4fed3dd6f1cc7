"""The IDX file format (MNIST's) and a reader that checks every byte of it.

An IDX file is a tiny header followed by a C-order array (all integers big-endian)::

    bytes 0-1    00 00
    byte  2      dtype code: 08 ubyte, 09 sbyte, 0B int16, 0C int32, 0D float32, 0E float64
    byte  3      ndim (at least 1)
    4 * ndim     the dimensions, one uint32 each, none zero
    the rest     prod(dims) items, exactly: a short or a long file is an error

The file may be gzip-compressed; that is told from its first two bytes (1f 8b), not its name.

The work is bounded by the header, which is read and checked first: a header claiming more
than ``MAX_IDX_BYTES`` is refused before any of the body is read, and a gzip stream is
decompressed only up to the size the header implies (plus ``_SLACK`` bytes to tell a file that
is too long), so a gzip bomb costs what its header claims, not what it would inflate to.
"""

from __future__ import annotations

import math
import os
import stat
import struct
import sys
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["DataError", "read_idx", "FIX_FILE", "MAX_IDX_BYTES"]


class DataError(ValueError):
    """A data file or folder is missing, malformed or could not be fetched.

    The message names the file (or argument), says what was wrong and what to do.
    """


_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
MAX_IDX_BYTES = 2**31           # 2 GiB: 45x Fashion-MNIST's largest file; more is a broken header
_SLACK = 1 << 16                # bytes read past the header's size to tell "too long" from "exact"
_CHUNK = 1 << 24                # read (and inflate) at most this much at a time
FIX_FILE = ("delete it and download again, or pass --data-dir to a folder with the four "
             "MNIST IDX files")


class _Gunzip:
    """A gzip file as a stream of its inflated bytes (several members in a row read as one).

    ``gzip.GzipFile`` inflates 128 KB of input per zlib call and takes the GIL back between
    calls; this inflates up to ``_CHUNK`` bytes per call, so the CLI's data loading runs on a
    thread while the main thread imports (``aae_np/cli.py``) instead of waiting for the GIL.
    """

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._inflate = zlib.decompressobj(wbits=31)        # 31: a gzip header and trailer
        self._input = b""                                   # read, not yet inflated

    def readinto(self, buffer: memoryview) -> int:
        filled = 0
        while filled < len(buffer):
            if self._inflate.eof:                           # a member ended: zero padding, or another
                self._input = self._input.lstrip(b"\0")
            if not self._input:
                self._input = self._f.read(_CHUNK)
                if not self._input:
                    if not self._inflate.eof:
                        raise EOFError("compressed file ended before the end-of-stream marker was reached")
                    break
                continue
            if self._inflate.eof:
                self._inflate = zlib.decompressobj(wbits=31)
            out = self._inflate.decompress(self._input, len(buffer) - filled)
            self._input = self._inflate.unused_data if self._inflate.eof else self._inflate.unconsumed_tail
            buffer[filled:filled + len(out)] = out
            filled += len(out)
        return filled


def _read_into(stream: BinaryIO, buffer: memoryview) -> int:
    """Fill ``buffer`` from ``stream`` a chunk at a time; the number of bytes read (less at EOF)."""
    filled = 0
    while filled < len(buffer):
        n = stream.readinto(buffer[filled:filled + _CHUNK])
        if not n:
            break
        filled += n
    return filled


def _read_up_to(stream: BinaryIO, n: int) -> bytes:
    buffer = bytearray(n)
    return bytes(buffer[:_read_into(stream, memoryview(buffer))])


def _parse(path: Path, stream: BinaryIO, size: int | None, where: str) -> np.ndarray:
    """Read the header, check it, then read exactly the body it implies from ``stream``.

    ``size`` is the file's length when known without reading it (an uncompressed regular file).
    """
    def bad(what: str) -> DataError:
        return DataError(f"{path}: {what}; {FIX_FILE}")

    magic = _read_up_to(stream, 4)
    if len(magic) < 4:
        raise bad(f"only {len(magic)} bytes{where}, too short for the 4-byte IDX magic number")
    if magic[:2] != b"\0\0":
        raise bad(f"not an IDX file: magic number {magic.hex(' ')}, expected "
                  "00 00 <dtype code> <ndim>")
    code, ndim = magic[2], magic[3]
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise bad(f"unknown IDX dtype code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise bad("IDX header has 0 dimensions; at least 1 is needed")
    header = 4 + 4 * ndim
    raw_dims = _read_up_to(stream, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise bad(f"truncated header: {ndim} dimensions need {header} bytes, "
                  f"the file has {4 + len(raw_dims)}{where}")
    dims = struct.unpack(f">{ndim}I", raw_dims)
    if 0 in dims:
        raise bad(f"dimension {dims.index(0)} is zero (shape {dims}); every dimension must be >= 1")
    dtype = _IDX_DTYPES[code]
    body = math.prod(dims) * dtype.itemsize
    expected = header + body
    if body > MAX_IDX_BYTES:
        raise bad(f"header claims shape {dims} of {dtype.name}, {body} bytes, over this reader's "
                  f"limit of {MAX_IDX_BYTES} bytes ({MAX_IDX_BYTES / 2**30:g} GiB): a broken header")
    if size is not None and size != expected:      # known without reading the body
        kind = "truncated" if size < expected else "trailing bytes"
        raise bad(f"{kind}: shape {dims} of {dtype.name} needs {expected} bytes, "
                  f"the file has {size}{where}")
    # read the big-endian items straight into a native array, then swap in place: one copy
    flat = np.empty(body, dtype=np.uint8)
    got = _read_into(stream, memoryview(flat))
    extra = len(_read_up_to(stream, _SLACK)) if got == body else 0   # the rest is never read
    if got < body or extra:
        kind = "truncated" if got < body else "trailing bytes"
        at_least = "at least " if extra == _SLACK else ""
        raise bad(f"{kind}: shape {dims} of {dtype.name} needs {expected} bytes, "
                  f"the file has {at_least}{header + got + extra}{where}")
    array = flat.view(dtype.newbyteorder("=")).reshape(dims)
    if dtype.itemsize > 1 and sys.byteorder == "little":
        array.byteswap(inplace=True)
    return array


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file, gzip-compressed or raw, into an array of shape ``dims``.

    The dtype is the header's, in native byte order (``uint8`` for MNIST images and labels).
    Raises ``DataError`` naming the file for a missing or unreadable file, a corrupt gzip
    stream, a bad magic number or dtype code, zero dimensions, a header claiming more than
    ``MAX_IDX_BYTES``, or a length that does not match the header exactly (truncated or
    trailing bytes). Memory and time are bounded by the header's size, whatever the file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == _GZIP_MAGIC
            f.seek(0)
            if not gzipped:
                info = os.fstat(f.fileno())
                return _parse(path, f, info.st_size if stat.S_ISREG(info.st_mode) else None, "")
            return _parse(path, _Gunzip(f), None, " after gunzip")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; pass --data-dir to a folder with the four "
                        "MNIST IDX files") from None
    except (EOFError, zlib.error) as err:
        raise DataError(f"{path}: corrupt gzip stream ({err}); {FIX_FILE}") from None
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err}); check that it is a "
                        f"readable file, or {FIX_FILE}") from None
