"""The commands, and the only runtime modules that import Click.

attn-score (`runtime.cli:main`, score.py) and attn-translate (`runtime.cli:translate_main`,
translate.py) parse options and report; runtime.engines does the work. attn-serve (serve.py) loads
the bundles and runs runtime.serve's app on uvicorn. options.py declares the
options they share once; common.py holds the one error handler and --engine ray's mapping;
report.py (--report, jinja2) and plots.py (--plot-attention, matplotlib) are their optional outputs.
Nothing below runtime.cli imports it.
"""

from runtime.cli.common import LOCAL_ONLY, NOT_FOR_THE_JOB, RAY_KEYWORDS
from runtime.cli.score import main
from runtime.cli.translate import translate_main

__all__ = ["main", "translate_main", "LOCAL_ONLY", "NOT_FOR_THE_JOB", "RAY_KEYWORDS"]
