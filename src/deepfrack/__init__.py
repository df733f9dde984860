"""deepfrack: which layers to fuse, how to tile them, which weights to keep on chip - and what it saves.

The whole job from Python (``deepfrack.api``, re-exported here)::

    import deepfrack
    result = deepfrack.run(workload="net.yaml", arch="arch.yaml", constraints="constraints/", out="out")
"""

from __future__ import annotations

from typing import Any

from deepfrack._version import __version__

#: ``deepfrack.api.benchmark`` is not among them: ``deepfrack.benchmark`` is the benchmark stage's package
_API = ("run", "optimize", "evaluate", "sweep", "write_outputs", "RunResult")


def __getattr__(name: str) -> Any:
    # the API is imported on first use, so that `import deepfrack` stays light
    if name in _API:
        from deepfrack import api

        return getattr(api, name)
    raise AttributeError(f"module 'deepfrack' has no attribute {name!r}")


__all__ = ["__version__", *_API]
