"""Shells of the source adapters: read a vendor system, post its events to ingest."""
