"""The host side of one experiment: run directory, chunked compiled loop, logging, checkpoints,
evaluation, plots and videos."""
