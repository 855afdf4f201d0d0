"""Prefect orchestration: the flows, the local server schedules need, and progress output."""
