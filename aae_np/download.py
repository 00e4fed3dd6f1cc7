"""One file over HTTP(S), checked: an overall deadline, a clear reason for each failure, no litter.

``fetch_file`` tries each mirror in turn. An attempt streams the file into a part file beside
its destination, named ``.<name>.pid<PID>.<random>.part``, checks its MD5 and only then renames
it into place, so a failed attempt leaves nothing behind. What can go wrong, and what is said:

- the server is unreachable, answers 404, times out on a read: that mirror's line in the report;
- the connection closes before the announced Content-Length: "connection closed after N of M
  bytes", not an MD5 mismatch;
- the whole attempt takes longer than ``deadline`` seconds (a server trickling a byte a second,
  headers included): a watchdog thread shuts the socket down, and the report says so;
- the local disk is full, or the folder cannot be written: a ``DataError`` at once, naming the
  file and what to do (another mirror would not help).

A process killed mid-download leaves its part file; ``remove_stale_parts`` removes those whose
process is gone (or that have not changed for ``STALE_AFTER`` seconds) before the next download.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import http.client
import os
import re
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path

from tqdm import tqdm

from aae_np.idx import DataError

__all__ = ["fetch_file", "remove_stale_parts", "STALE_AFTER"]

STALE_AFTER = 3600.0       # seconds without a write after which any part file counts as stale
_CHUNK = 1 << 16


class _AttemptFailed(Exception):
    """This mirror did not deliver the file; the message says why (another mirror may)."""


class _WriteFailed(Exception):
    """Writing the part file failed: a local problem, so no other mirror is tried."""

    def __init__(self, err: OSError, written: int):
        super().__init__(err)
        self.err, self.written = err, written


class _Watchdog:
    """Shuts down the sockets of one attempt when ``seconds`` have passed, so no read blocks
    past the deadline (a socket timeout bounds one read only, not a trickle of them)."""

    def __init__(self, seconds: float):
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                self._shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)      # wakes a blocked recv, unlike close()
        except OSError:
            pass                                 # already closed


def _opener(watchdog: _Watchdog) -> urllib.request.OpenerDirector:
    """urllib's usual opener (proxies, redirects), whose connections register with ``watchdog``."""
    def watched(base: type[http.client.HTTPConnection]) -> type[http.client.HTTPConnection]:
        class Watched(base):                     # type: ignore[valid-type, misc]
            def connect(self) -> None:
                super().connect()
                watchdog.watch(self.sock)
        return Watched

    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(watched(http.client.HTTPConnection), req)

    class HTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(watched(http.client.HTTPSConnection), req, context=self._context)

    return urllib.request.build_opener(HTTP(), HTTPS())


def _write_all(fd: int, chunk: bytes) -> None:
    """Write all of ``chunk`` to ``fd`` (``os.write`` may write less than it is given)."""
    view = memoryview(chunk)
    while view:
        view = view[os.write(fd, view):]


def _fetch(url: str, fd: int, timeout: float, deadline: float, progress: bool, desc: str) -> str:
    """Stream ``url`` into the open file ``fd``; return the MD5 hex digest of what was written."""
    md5 = hashlib.md5(usedforsecurity=False)
    got, total = 0, None
    with _Watchdog(deadline) as watchdog:
        try:
            with _opener(watchdog).open(url, timeout=min(timeout, deadline)) as resp:
                total = resp.length                      # Content-Length, or None if not sent
                read = getattr(resp, "read1", resp.read)
                with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                          desc=desc, disable=not progress, leave=False) as bar:
                    while not watchdog.expired and (chunk := read(_CHUNK)):
                        try:
                            _write_all(fd, chunk)
                        except OSError as err:
                            raise _WriteFailed(err, got) from None
                        md5.update(chunk)
                        got += len(chunk)
                        bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as err:
            if isinstance(err, urllib.error.HTTPError) or not (watchdog.expired or got):
                raise                                    # the caller reports these as they are
            if not watchdog.expired:                     # e.g. reset, or a chunked stream cut
                raise _AttemptFailed(f"connection lost after {got} of {total or '?'} bytes "
                                     f"({type(err).__name__})") from None    # not "MD5 wrong"
    if total is not None and got == total:
        return md5.hexdigest()
    if watchdog.expired:
        raise _AttemptFailed(f"not complete within the {deadline:g} s deadline ({got} of "
                             f"{total or '?'} bytes received); the server is too slow")
    if total is not None:
        raise _AttemptFailed(f"connection closed after {got} of {total} bytes")
    return md5.hexdigest()


def _local_error(target: Path, err: OSError, written: int, fix: str) -> DataError:
    """The one-line error for a part file of ``target`` that could not be created or written."""
    if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return DataError(f"{target}: the disk is full (no space left after {written} bytes of "
                         f"the download); free some space on the disk holding {target.parent} "
                         f"and run again. {fix}")
    return DataError(f"{target}: cannot write the download ({err.strerror or err}); check that "
                     f"{target.parent} is a writable folder. {fix}")


def _finish(fd: int, tmp: str, target: Path) -> None:
    """Make the checked part file ``target``: on disk, readable by all, renamed into place."""
    try:
        os.fsync(fd)                             # a full disk may show only here (NFS, quotas)
        os.chmod(tmp, 0o644)                     # mkstemp makes it private (0600)
        os.replace(tmp, target)
    except OSError as err:
        raise _WriteFailed(err, os.fstat(fd).st_size) from None


def fetch_file(name: str, dest: Path, mirrors: Sequence[str], md5: str, *, title: str, fix: str,
               timeout: float, deadline: float, progress: bool) -> Path:
    """Fetch ``name`` from the first mirror whose copy has MD5 ``md5`` into ``dest / name``.

    ``timeout`` bounds each connect and read, ``deadline`` a whole attempt on one mirror, both
    in seconds. ``title`` (e.g. "MNIST") and ``fix`` (what the user can do instead) go into the
    messages. Raises ``DataError``: at once for a local write error, else listing each mirror.
    """
    attempts: list[str] = []
    network_only = True           # every failure was a connection error: probably offline
    for base in mirrors:
        url = base.rstrip("/") + "/" + name
        try:
            fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{name}.pid{os.getpid()}.", suffix=".part")
        except OSError as err:
            raise _local_error(dest / name, err, 0, fix) from None
        try:
            digest = _fetch(url, fd, timeout, deadline, progress, desc=name)
            if digest == md5:
                _finish(fd, tmp, dest / name)
                return dest / name
            network_only = False
            attempts.append(f"{url}: MD5 {digest}, expected {md5}; discarded")
        except _WriteFailed as failed:
            raise _local_error(dest / name, failed.err, failed.written, fix) from None
        except urllib.error.HTTPError as err:
            err.close()
            network_only = False
            attempts.append(f"{url}: HTTP {err.code} {err.reason}")
        except _AttemptFailed as failed:
            network_only = False
            attempts.append(f"{url}: {failed}")
        except (OSError, http.client.HTTPException) as err:   # URLError, timeouts, resets
            reason = getattr(err, "reason", None) or err
            attempts.append(f"{url}: {str(reason) or type(reason).__name__}")
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)
            if os.path.exists(tmp):
                os.remove(tmp)
    offline = " (no network?)" if attempts and network_only else ""
    tried = "".join(f"\n  {line}" for line in attempts) or "\n  (no mirrors given)"
    raise DataError(f"could not download {title} file {name}{offline}; tried:{tried}\n{fix}.")


def remove_stale_parts(folder: Path, names: Iterable[str], older_than: float = STALE_AFTER) -> list[Path]:
    """Remove the part files of ``names`` in ``folder`` left by dead processes; return them.

    A part file is stale when the process named in it is gone, or when it has not been
    written for ``older_than`` seconds (older versions did not name the process).
    """
    removed, now = [], time.time()
    for name in names:
        for path in folder.glob(f".{glob.escape(name)}.*.part"):
            middle = path.name[len(name) + 2:-len(".part")]          # "pid<PID>.<random>"
            pid = re.fullmatch(r"pid(\d+)\.[a-z0-9_]+", middle)
            try:
                if (pid and not _alive(int(pid[1]))) or now - path.stat().st_mtime > older_than:
                    path.unlink()
                    removed.append(path)
            except OSError:
                pass                             # gone already, or not ours to remove
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)                          # signal 0: only asks whether it exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True                              # exists, belongs to another user
    return True
