"""Entry point, options and output handling of the MLM pipeline."""
