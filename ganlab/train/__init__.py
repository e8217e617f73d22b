"""Training: run directories, checkpoints, the generic loop."""
