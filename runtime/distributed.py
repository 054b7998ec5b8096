"""The Ray engine's old name: `runtime.engines.ray` under the name earlier releases documented.

`import runtime.distributed as rd; rd.score_files(...)` keeps working; new code imports
runtime.engines.ray.
"""

from runtime.engines.ray import *  # noqa: F401,F403
from runtime.engines.ray import __all__  # noqa: F401
