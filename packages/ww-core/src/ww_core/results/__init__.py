"""Results of an analysis: rows, summary, export, output files and the terminal table."""
