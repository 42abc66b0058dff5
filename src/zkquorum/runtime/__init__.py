"""The asyncio runtime that drives the pure cores: sockets, timers, files."""
