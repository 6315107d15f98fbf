"""Configuration: the typed schemas, value checks, KnowIt kwargs translation, composition."""
