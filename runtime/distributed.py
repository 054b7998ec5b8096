"""The Ray engine's old name: `runtime.engines.ray` under the name earlier releases documented.

`import runtime.distributed as rd; rd.score_files(...)` keeps working and warns once (FutureWarning,
Optimum's `modeling_ort` shim pattern); new code imports runtime.engines.ray.
"""

import warnings

from runtime.engines.ray import *  # noqa: F401,F403
from runtime.engines.ray import __all__  # noqa: F401

warnings.warn("runtime.distributed is the Ray engine's old name and will go: import runtime.engines.ray instead",
              FutureWarning, stacklevel=2)
