"""Datasets, prediction windows, splits, scaling and loaders.

Kept import-free on purpose: ``knowit-app-import`` loads :mod:`knowit_app.data.importer`
without paying for torch, which only :mod:`knowit_app.data.prepared` needs.
"""
