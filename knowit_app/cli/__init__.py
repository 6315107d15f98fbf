"""Console scripts: one module per command, one way to parse arguments and print tables."""
