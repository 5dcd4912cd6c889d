"""Implementations of the ports of ``server/ports.py``; only the composition roots import them."""
