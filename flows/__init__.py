"""Prefect flows (the experiment DAG), the typed configuration and the ``w2s`` CLI."""
