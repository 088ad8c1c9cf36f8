"""Thin I/O modules, one per outside resource."""
