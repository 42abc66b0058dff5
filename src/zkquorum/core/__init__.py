"""Pure state machines: events in, actions out, time passed in."""
