"""deepfrack's version: one place, read by the package, the cache's code digest and the build."""

__version__ = "0.1.0"
