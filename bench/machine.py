"""The machine a benchmark ran on, and its BLAS roofline, for every bench report."""

from __future__ import annotations

import os
import platform
import time

import numpy as np


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor() or model
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def sgemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Median float32 matmul rate with numpy's BLAS on this machine, now."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / sorted(times)[repeats // 2] / 1e9
