"""Show: the human report (Markdown, HTML, plots, timelines) built from a verdict and a log."""
