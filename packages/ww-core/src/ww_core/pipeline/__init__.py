"""The analysis pipeline: routing a source to its adapter, selection, per-layer analysis, executors, cache and progress."""
