"""The OCI distribution API: a registry as a source and a sink of images."""
