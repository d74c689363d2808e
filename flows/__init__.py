"""Prefect flows: thin wrappers that pass paths between library calls. Nothing imports flows."""
