"""Command-line interface: ``zkquorum <command>``."""
