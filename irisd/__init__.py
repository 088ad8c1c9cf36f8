"""irisd: a per-host daemon for InterSystems IRIS hosts."""

__version__ = "0.1.0"
