"""The Docker daemon as a place: a narrow Engine API client, a source and a sink."""
