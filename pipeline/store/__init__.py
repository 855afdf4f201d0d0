"""Stage 2, kept: the snapshot store (every registry answer on disk, with its manifest), reconstructed snapshots, and the bulk ingest of registry records."""
