"""The OCI distribution API: a registry as a source and a sink of images."""

DEFAULT_JOBS = 4
"""Blobs pushed at once."""
