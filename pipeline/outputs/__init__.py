"""What people read from a run: the report, the CI gate against the baseline, changes since a date, the generated schemas."""
