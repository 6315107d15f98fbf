"""Hydra config root (a package so Hydra finds it with pkg:// in an installed wheel)."""
