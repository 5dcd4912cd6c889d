"""Adapters of the embedded default (one process)."""
