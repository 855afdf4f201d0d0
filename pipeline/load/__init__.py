"""Stage 5: the output tables, domain records turned into rows, the atomic writer and the previous run's state."""
