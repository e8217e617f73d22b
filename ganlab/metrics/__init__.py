"""Evaluation: mode-collapse statistics, feature-space metrics (FID, KID, ...), eval.json."""
