"""The store: activity appended as columnar segments, pivoted per recipient, kept as
pages and counters, and the upkeep that keeps them fresh."""
