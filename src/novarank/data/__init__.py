"""Data sets: the typed Dataset, loaders for real formats, the synthetic platform."""
