"""onnxruntime sessions: execution-provider choice (never a silent fallback), threads, options."""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort

from runtime.errors import AttnError

log = logging.getLogger("runtime")

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
GRAPH_OPTIMIZATION = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # settings `python -m bench tune` compares
MEMORY_ARENA = True


class ProviderError(AttnError, RuntimeError):
    """An explicitly requested execution provider is not available."""


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


def make_session(model: str | Path | bytes, provider: str = "auto", threads: int = 0) -> tuple[ort.InferenceSession, str]:
    """(session, provider actually used) for a graph file or its bytes. An explicit provider that
    onnxruntime did not take (no GPU, missing CUDA libraries) raises ProviderError; 'auto' falls
    back to CPU and logs it."""
    chosen = resolve_provider(provider)
    options = ort.SessionOptions()
    options.graph_optimization_level = GRAPH_OPTIMIZATION
    options.enable_cpu_mem_arena = MEMORY_ARENA
    options.intra_op_num_threads = max(0, threads)
    options.log_severity_level = 3  # provider fallbacks are reported by us, not as ORT warnings
    wanted = [PROVIDERS[chosen]] + (["CPUExecutionProvider"] if chosen != "cpu" else [])
    session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), sess_options=options, providers=wanted)
    used = _SHORT.get(session.get_providers()[0], session.get_providers()[0])
    if used != chosen:
        if provider != "auto":
            raise ProviderError(f"provider {chosen!r} failed to start (no device or missing libraries); onnxruntime used {used!r}")
        log.info("provider auto: %s failed to start, using %s", chosen, used)
    else:
        log.info("provider %s: using %s", provider, used)
    return session, used
