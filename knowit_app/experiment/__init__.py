"""The experiment directory's on-disk contract: every path, file format, write and lock."""
