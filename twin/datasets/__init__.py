"""Datasets shipped with the twin (the Berkane model)."""
