"""deepfrack's version, in a module of its own: the stages read it without importing the package's
``__init__`` (which reaches the API, the top stage)."""

__version__ = "0.1.0"
