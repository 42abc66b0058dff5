"""The deterministic simulator: virtual time, a seeded faulty network, invariant checks."""
