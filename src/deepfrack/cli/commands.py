"""Imports every sub-command module so that each registers itself on the ``main`` group."""

from deepfrack.cli import (
    benchmark_cmd,  # noqa: F401  benchmark
    model_cmd,  # noqa: F401  model
    run_cmd,  # noqa: F401  run (benchmark + optimize)
    search_cmds,  # noqa: F401  optimize, evaluate
    stats_cmd,  # noqa: F401  stats
    sweep_cmd,  # noqa: F401  sweep (run over a grid of architecture variations)
    workload_cmds,  # noqa: F401  zoo, workload show, arch list
)
