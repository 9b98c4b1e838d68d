"""The package version (one place; the root facade and ingest manifests read it)."""

__version__ = "0.1.0"
