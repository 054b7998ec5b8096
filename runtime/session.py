"""onnxruntime sessions: execution-provider choice (never a silent fallback), threads, options."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields, replace
from difflib import get_close_matches
from pathlib import Path

import onnxruntime as ort

from runtime.errors import ProviderError

log = logging.getLogger("runtime")

MAX_THREADS = 4 * (os.cpu_count() or 1)  # more threads or workers than this only thrash
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "dml": "DmlExecutionProvider",
}
_SHORT = {full: short for short, full in PROVIDERS.items()}
AUTO_PREFERENCE = ("cuda", "cpu")  # TensorRT builds engines at start-up: ask for it explicitly
OPTIMIZATION_LEVELS = {
    "off": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


@dataclass(frozen=True)
class SessionOptions:
    """onnxruntime session settings, passed explicitly (`runtime.load(..., session_options=...)`,
    the commands' --threads / --graph-optimization / --no-memory-arena); `python -m bench tune`
    compares them.

    threads: intra-op threads (0 = onnxruntime's default, one per core)
    inter_op_threads: threads across independent nodes (0 = default; used only by a parallel executor)
    optimization: graph optimization level: off, basic, extended, all
    memory_arena: onnxruntime's CPU memory arena (faster reuse, higher peak memory)
    """

    threads: int = 0
    inter_op_threads: int = 0
    optimization: str = "all"
    memory_arena: bool = True

    def __post_init__(self) -> None:
        for name, kind in (("threads", int), ("inter_op_threads", int), ("memory_arena", bool), ("optimization", str)):
            value = getattr(self, name)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise TypeError(f"session_options: {name} must be {kind.__name__}, "
                                f"got {type(value).__name__} {value!r}")
        if self.optimization not in OPTIMIZATION_LEVELS:
            raise ValueError(f"optimization must be one of {', '.join(OPTIMIZATION_LEVELS)}, got {self.optimization!r}")
        if self.threads < 0 or self.inter_op_threads < 0:
            raise ValueError("threads must be >= 0 (0 = onnxruntime's default)")

    @classmethod
    def of(cls, value: "SessionOptions | dict | None", threads: int = 0) -> "SessionOptions":
        """SessionOptions from an instance, a dict of its fields, or None (defaults); a non-zero
        `threads` (the older keyword) sets the intra-op threads."""
        if value is None:
            value = cls()
        elif isinstance(value, dict):
            known = [f.name for f in fields(cls)]
            unknown = [name for name in value if name not in known]
            if unknown:
                guesses = {name: get_close_matches(str(name), known, n=1) for name in unknown}
                hints = "; ".join(f"{name!r}" + (f" (did you mean {guess[0]!r}?)" if guess else "")
                                  for name, guess in guesses.items())
                raise ValueError(f"session_options: unknown option {hints}; the options are: {', '.join(known)}")
            value = cls(**value)
        elif not isinstance(value, cls):
            raise TypeError(f"session_options must be runtime.SessionOptions or a dict, got {type(value).__name__}")
        return replace(value, threads=threads) if threads else value

    def to_ort(self) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.graph_optimization_level = OPTIMIZATION_LEVELS[self.optimization]
        options.enable_cpu_mem_arena = self.memory_arena
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = self.inter_op_threads
        options.log_severity_level = 3  # provider fallbacks are reported by us, not as ORT warnings
        return options


# x86-64 features that choose onnxruntime's int8 (MLAS) kernels: an int8 figure is only reproducible
# to the review on a machine with the same ones (README "--quantize int8")
KERNEL_FLAGS = ("avx2", "avx512_vnni", "avx_vnni")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> list[str] | None:
    """The KERNEL_FLAGS this machine's CPU has, sorted, from /proc/cpuinfo ([] on a CPU with none,
    e.g. ARM); None where that file is missing or unreadable (macOS, Windows): unknown, not none."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    flags = {flag for line in text.splitlines() if line.split(":", 1)[0].strip() in ("flags", "Features")
             for flag in line.split(":", 1)[-1].split()}
    return sorted(flag for flag in KERNEL_FLAGS if flag in flags)


def with_cpu_flags(figure: dict) -> dict:
    """`figure` plus `cpu_flags` (what it was measured on), left out where they are unknown."""
    flags = cpu_flags()
    return figure if flags is None else {**figure, "cpu_flags": flags}


def available_providers() -> list[str]:
    """Short names of the providers this onnxruntime build offers."""
    return [_SHORT.get(name, name) for name in ort.get_available_providers()]


def resolve_provider(choice: str) -> str:
    """'auto' -> the best available of AUTO_PREFERENCE; an explicit name must be available."""
    available = available_providers()
    if choice == "auto":
        return next(name for name in AUTO_PREFERENCE if name in available or name == "cpu")
    if choice not in PROVIDERS:
        raise ProviderError(f"unknown provider {choice!r}; known: auto, {', '.join(PROVIDERS)}")
    if choice not in available:
        raise ProviderError(
            f"provider {choice!r} is not available in this onnxruntime build; available: {', '.join(available)}"
        )
    return choice


def make_session(model: str | Path | bytes, provider: str = "auto", threads: int = 0,
                 session_options: SessionOptions | dict | None = None) -> tuple[ort.InferenceSession, str]:
    """(session, provider actually used) for a graph file or its bytes. An explicit provider that
    onnxruntime did not take (no GPU, missing CUDA libraries) raises ProviderError; 'auto' falls
    back to CPU and logs it. `session_options`: SessionOptions or a dict of its fields; a non-zero
    `threads` overrides its threads."""
    chosen = resolve_provider(provider)
    options = SessionOptions.of(session_options, threads=max(0, threads)).to_ort()
    wanted = [PROVIDERS[chosen]] + (["CPUExecutionProvider"] if chosen != "cpu" else [])
    session = ort.InferenceSession(model if isinstance(model, bytes) else str(model),
                                   sess_options=options, providers=wanted)
    used = _SHORT.get(session.get_providers()[0], session.get_providers()[0])
    if used != chosen:
        if provider != "auto":
            raise ProviderError(f"provider {chosen!r} failed to start (no device or missing libraries); "
                                f"onnxruntime used {used!r}")
        log.info("provider auto: %s failed to start, using %s", chosen, used)
    else:
        log.info("provider %s: using %s", provider, used)
    return session, used
