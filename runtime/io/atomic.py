"""Output files that never lose or replace what they should not.

`OutputFile(path, inputs)` is the one writer of the commands' output:

- a regular file (or a new one) is written to a temporary file in the same folder, fsynced and
  renamed over the target only when complete; on any failure or signal the temporary file is
  removed and nothing appears at the target. A new file follows the umask; an existing file keeps
  its mode. A symlink is written through: its target is replaced, the link stays.
- a non-regular target (/dev/null, a FIFO, a character device) is written directly, never renamed
  over: a device is never replaced by a file.
- a name ending in `.gz` is gzip-compressed.
- an output that is one of the inputs (same inode, through symlinks too) is refused before anything
  is opened.
- SIGTERM and SIGHUP are turned into `Interrupted` while the output is open, so the temporary file is
  removed as on Ctrl-C; `exit_code` gives 128 + the signal number.
- every OS error (disk full, read-only folder, no permission, name too long) becomes one
  `OutputError` line; `path=None` or '-' writes to stdout, whose errors are reported the same way.
"""

from __future__ import annotations

import gzip
import io
import os
import secrets
import signal
import stat
import sys
import threading
from pathlib import Path
from typing import IO, Iterable

from runtime.errors import Interrupted, OutputError

NAME_MAX = 255
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def exit_code(error: BaseException) -> int:
    """128 + N for a signal N (SIGINT for KeyboardInterrupt), the shell's convention."""
    if isinstance(error, Interrupted):
        return 128 + error.signum
    return 128 + int(signal.SIGINT)


def describe(error: OSError) -> str:
    """'no space left on device' from an OSError, without the Python decoration."""
    return (error.strerror or str(error)).lower() if error.errno else str(error)


def refuse_same_file(output: str | Path | None, inputs: Iterable[str | Path]) -> None:
    """OutputError when `output` is the same file as one of `inputs` (by inode: links included)."""
    if output in (None, "-"):
        return
    for source in inputs:
        if source in (None, "-"):
            continue
        try:
            same = os.path.samefile(source, output)
        except OSError:  # one of them does not exist (yet): not the same file
            continue
        if same:
            raise OutputError(f"{output}: is the input file {str(source)!r}; writing it would destroy the input, "
                              "choose another -o")


def check_output_path(path: str | Path | None, inputs: Iterable[str | Path] = ()) -> None:
    """What `OutputFile` checks on opening, without opening: for an output written at the end (the
    --report page), so that a bad path fails before any row is read, not after the work."""
    if path in (None, "-"):
        return
    refuse_same_file(path, inputs)
    _writable_target(Path(path))


def _writable_target(path: Path) -> tuple[str, os.stat_result | None]:
    """(where the data goes: a symlink's target, its stat or None when new); OutputError for a missing
    folder or a directory."""
    target = os.path.realpath(path)  # a symlink is written through to its target
    try:
        info = os.stat(target)
    except FileNotFoundError:
        info = None
    if info is None and not os.path.isdir(os.path.dirname(target) or "."):
        raise OutputError(f"{path}: output folder {os.path.dirname(str(path)) or '.'!r} does not exist")
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{path}: is a directory")
    return target, info


def _is_write_error(error: BaseException | None) -> bool:
    """An OSError from writing (no file name attached; a broken pipe is the reader leaving, not ours)."""
    return isinstance(error, OSError) and not isinstance(error, BrokenPipeError) and error.filename is None


def _handle_signal(signum, frame) -> None:
    raise Interrupted(signum)


class OutputFile:
    """Context manager giving a text handle (utf-8, '\\n' newlines); see the module docstring."""

    def __init__(self, path: str | Path | None, inputs: Iterable[str | Path] = (), encoding: str = "utf-8"):
        self.path = None if path in (None, "-") else Path(path)
        self.inputs = list(inputs)
        self.encoding = encoding
        self.handle: IO[str] | None = None
        self._tmp: str | None = None
        self._target: str | None = None  # where the data ends up (a symlink's target)
        self._fd: int | None = None
        self._regular = True
        self._old_handlers: dict = {}
        self._pending = 0

    @property
    def name(self) -> str:
        return "stdout" if self.path is None else str(self.path)

    # === Opening ===
    def __enter__(self) -> IO[str]:
        if self.path is None:
            self.handle = sys.stdout
            return self.handle
        refuse_same_file(self.path, self.inputs)
        self._catch_signals()
        try:
            self._open()
        except OSError as error:
            self._cleanup()
            self._restore_signals()
            raise OutputError(f"{self.path}: cannot write ({describe(error)})") from None
        except BaseException:
            self._cleanup()
            self._restore_signals()
            raise
        raw = os.fdopen(self._fd, "wb", closefd=True)
        self._fd = None
        binary: IO[bytes] = raw
        if self.path.name.lower().endswith(".gz"):
            binary = gzip.GzipFile(filename=self.path.name.removesuffix(".gz"), mode="wb", fileobj=raw, mtime=0)
            binary._attn_raw = raw  # closed after the gzip trailer is written
        self.handle = io.TextIOWrapper(binary, encoding=self.encoding, newline="", write_through=False)
        return self.handle

    def _open(self) -> None:
        target, info = _writable_target(self.path)
        folder = os.path.dirname(target) or "."
        self._target = target
        if info is not None and not stat.S_ISREG(info.st_mode):
            # /dev/null, a FIFO, a terminal: write in place; renaming over it would replace the device
            self._regular = False
            self._fd = os.open(target, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
            return
        self._tmp = os.path.join(folder, self._temp_name(folder, os.path.basename(target)))
        self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        if info is not None:  # an existing file keeps its mode (and owner, where we may set it)
            os.fchmod(self._fd, stat.S_IMODE(info.st_mode))
            if hasattr(os, "fchown") and (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(self._fd, info.st_uid, info.st_gid)
                except OSError:
                    pass

    @staticmethod
    def _temp_name(folder: str, name: str) -> str:
        """`.NAME.XXXXXXXX.partial` beside the target, or a short name when that would pass NAME_MAX."""
        token = secrets.token_hex(4)
        try:
            limit = os.pathconf(folder, "PC_NAME_MAX")
        except (OSError, ValueError, AttributeError):
            limit = NAME_MAX
        candidate = f".{name}.{token}.partial"
        return candidate if len(candidate.encode("utf-8", "surrogateescape")) <= limit else f".attn-{token}.partial"

    # === Closing ===
    def __exit__(self, exc_type, exc, tb) -> None:
        if self.path is None:
            if _is_write_error(exc):
                discard_stdout()
                raise OutputError(f"stdout: cannot write ({describe(exc)})") from None
            if exc_type is None:
                try:
                    self.handle.flush()
                except BrokenPipeError:
                    discard_stdout()
                    raise
                except OSError as error:
                    discard_stdout()
                    raise OutputError(f"stdout: cannot write ({describe(error)})") from None
            return
        self._defer_signals()  # a signal now must not cut the clean-up short
        try:
            if exc_type is None:
                try:
                    self._finish()
                except OSError as error:
                    raise OutputError(f"{self.path}: cannot write ({describe(error)})") from None
        finally:
            self._cleanup()
            self._restore_signals()
        if _is_write_error(exc):
            raise OutputError(f"{self.path}: cannot write ({describe(exc)}); nothing was written") from None
        if self._pending and exc_type is None:
            raise Interrupted(self._pending)

    def _finish(self) -> None:
        handle, self.handle = self.handle, None
        handle.flush()
        binary = handle.detach()
        raw = getattr(binary, "_attn_raw", binary)
        if binary is not raw:
            binary.close()  # writes the gzip trailer, leaves `raw` open
        raw.flush()
        if self._regular:
            os.fsync(raw.fileno())
        raw.close()
        if self._tmp is not None:
            os.replace(self._tmp, self._target)
            self._tmp = None

    def _cleanup(self) -> None:
        """Close whatever is open and remove the temporary file; never raises."""
        if self.handle is not None:
            handle, self.handle = self.handle, None
            binary = handle.buffer
            raw = getattr(binary, "_attn_raw", None)
            for closable in (handle, raw):
                try:
                    if closable is not None:
                        closable.close()
                except (OSError, ValueError):
                    pass
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
        if self._tmp is not None:
            try:
                os.unlink(self._tmp)
            except OSError:
                pass
            self._tmp = None

    # === Signals ===
    def _catch_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in _SIGNALS:
            try:
                self._old_handlers[signum] = signal.signal(signum, _handle_signal)
            except (ValueError, OSError):
                pass

    def _defer_signals(self) -> None:
        for signum in self._old_handlers:
            signal.signal(signum, self._remember)

    def _remember(self, signum, frame) -> None:
        self._pending = signum

    def _restore_signals(self) -> None:
        for signum, handler in self._old_handlers.items():
            signal.signal(signum, handler)
        self._old_handlers = {}


def discard_stdout() -> None:
    """After stdout failed (disk full, closed pipe): point fd 1 at /dev/null so the interpreter's
    final flush does not print a second error. /dev/null itself is only opened, never written over."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass
