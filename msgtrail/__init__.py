"""msgtrail: per-recipient message activity and its exports."""

__version__ = "0.1.0"
