"""The mathematics: layer matrices, eigenvalues, power-law/TPL/MP fits and per-layer metrics (numpy/scipy only)."""
