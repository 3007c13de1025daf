"""Views of results: the HTML report, its SVG, matplotlib plots and the history page."""
