"""Pure wire codecs for the election port and the quorum port (no I/O)."""
