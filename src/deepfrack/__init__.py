"""deepfrack: which layers to fuse, how to tile them, which weights to keep on chip - and what it saves."""

__version__ = "0.1.0"
