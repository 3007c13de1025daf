"""Whole-model operations: comparison, distances, SVD smoothing/sharpness and writing weights back."""
