"""Statistics of a schedule: where the energy goes (per stack, layer, region shape and memory level),
pictures of the tiles and their halo, and one report (``write_stats``)."""

from deepfrack.stats.components import ComponentRow, component_rows
from deepfrack.stats.summary import Summary, summarize
from deepfrack.stats.write import StatsFiles, write_stats

__all__ = ["ComponentRow", "StatsFiles", "Summary", "component_rows", "summarize", "write_stats"]
