"""What one attn-serve request may ask and how long it may wait (no web imports: the command reads its
defaults before it loads the web stack)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What one request may ask and how long it may wait (the attn-serve options of the same names)."""

    max_body_bytes: int = 1_048_576
    max_texts: int = 256
    max_batch_tokens: int = 4_096
    max_wait_ms: float = 0.0  # a free worker takes what is queued at once; rows merge while workers are busy
    max_queue_rows: int = 2_048
    timeout_s: float = 30.0
    retry_after_s: int = 1
    max_in_flight: int = 512
