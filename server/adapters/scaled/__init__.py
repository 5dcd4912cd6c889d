"""Adapters of the scaled-out form: PostgreSQL, Redis and a job engine shared by replicas and workers."""
