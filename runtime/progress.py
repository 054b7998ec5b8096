"""Progress on stderr with tqdm: a total when it can be known, rate and ETA.

A file is measured in bytes read (compressed bytes for .gz, the position in the file on disk), so
the bar reaches 100 % exactly at the end of the input; the rows done so far are shown beside it.
Input of unknown size (stdin) counts rows; in-memory lists count rows against their length.
"""

from __future__ import annotations

import sys
from typing import Iterable, Iterator, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def wanted(option: bool | None) -> bool:
    """--progress / --no-progress, or (None) automatic: on when stderr is a terminal."""
    return sys.stderr.isatty() if option is None else option


class Progress:
    """One bar. `total_bytes`: size of the input file, or None to count rows."""

    def __init__(self, enabled: bool, total_bytes: int | None = None, what: str = "rows", desc: str | None = None):
        self.what, self.rows = what, 0
        self.by_bytes = total_bytes is not None
        self.bar = tqdm(total=total_bytes, unit="B" if self.by_bytes else f" {what}", unit_scale=self.by_bytes,
                        unit_divisor=1024 if self.by_bytes else 1000, file=sys.stderr, disable=not enabled,
                        dynamic_ncols=True, desc=desc, smoothing=0.1)

    def advance(self, rows: int, position: int | None = None) -> None:
        """`rows` more rows done; `position`: bytes of the input read for them."""
        self.rows += rows
        if self.bar.disable:
            return
        if self.by_bytes and position is not None:
            self.bar.update(max(0, position - self.bar.n))
            self.bar.set_postfix_str(f"{self.rows:,} {self.what}", refresh=False)
        elif not self.by_bytes:
            self.bar.update(rows)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(items: Iterable[T], enabled: bool | None = None, total: int | None = None,
          desc: str | None = None) -> Iterator[T]:
    """Iterate with a bar over an in-memory collection (total = its length when it has one)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)
    return iter(tqdm(items, total=total, file=sys.stderr, disable=not wanted(enabled), dynamic_ncols=True, desc=desc))
