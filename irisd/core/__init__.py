"""The functional core: pure decisions over plain values. No I/O, no clock, no event loop."""
