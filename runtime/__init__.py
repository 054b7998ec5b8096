"""attn-onnx runtime: score text with exported attention models. Needs onnxruntime, numpy, click.

    >>> import runtime
    >>> model = runtime.load()  # the shipped IMDB bundle
    >>> model.predict(["A wonderful, moving film.", "Dull and far too long."]).round(2)  # float32, P(positive)
    array([1..., 0.0...], dtype=float32)
    >>> model.predict_labels("A wonderful, moving film.")  # a bare str is one text: one answer
    'positive'
    >>> model.explain(["A wonderful, moving film."], top_k=2)  # the most attended words
    [[('wonderful', 0.4...), ('moving', 0.3...)]]
    >>> runtime.load("spa-eng").translate("¿Dónde está la estación?").text  # spa-eng: from a checkout
    "Where's the station?"

(tests/test_readme.py runs these lines as a doctest: what they show is what they print.)
"""

from __future__ import annotations

from pathlib import Path

from runtime.bundle import Bundle, BundleError
from runtime.catalog import (  # noqa: F401  (the shipped bundles: part of the API)
    DEFAULT_BUNDLE,
    IN_WHEEL,
    RETIRED,
    SHIPPED,
    checkout_artifacts,
    resolve_bundle_path,
    shipped_bundles,
)
from runtime.io.tables import InputError
from runtime.models.classifier import DEFAULT_BATCH_TOKENS, Classifier
from runtime.models.translator import Translation, Translator
from runtime.session import ProviderError, SessionOptions, available_providers

__all__ = [
    "load",
    "shipped_bundles",
    "Classifier",
    "Translator",
    "Translation",
    "Bundle",
    "BundleError",
    "InputError",
    "ProviderError",
    "SessionOptions",
    "available_providers",
]

def load(
    path: str | Path | None = None,
    *,
    provider: str = "auto",
    threads: int = 0,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    verify: bool = True,
    session_options: SessionOptions | dict | None = None,
) -> Classifier | Translator:
    """Load a bundle (a folder, a shipped short name such as 'imdb', or None for the default):
    a Classifier for a sentiment bundle, a Translator for a translation bundle.

    provider: 'auto' (CUDA when available and working, else CPU), or one of cpu, cuda, tensorrt,
    openvino, coreml, dml (an unavailable explicit provider raises ProviderError).
    threads: onnxruntime intra-op threads (0 = onnxruntime's default).
    batch_tokens: token budget per batch (rows x padded length).
    verify: check each graph's sha256 against the manifest.
    session_options: onnxruntime settings, `runtime.SessionOptions(threads=1, optimization="basic",
    memory_arena=False)` or a dict of those fields (a non-zero `threads` above overrides its threads).
    """
    SessionOptions.of(session_options, threads)  # a bad option is a ValueError here, not "not a loadable graph"
    bundle = Bundle.load(resolve_bundle_path(path), verify=verify)
    if bundle.task == "translation":
        return Translator(bundle, provider=provider, threads=threads, session_options=session_options)
    return Classifier(bundle, provider=provider, threads=threads, batch_tokens=batch_tokens,
                      session_options=session_options)
