"""Watching training: the monitor, its snapshots, the history log and early-warning signals."""
