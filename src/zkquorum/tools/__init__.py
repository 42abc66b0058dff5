"""Pure tools over recorded peer events: parsing, timelines, narration, SVG traces.

Nothing here touches processes, sockets or clocks: records come in, text goes out.
"""
