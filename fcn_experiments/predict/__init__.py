"""Scoring and exporting with a trained FCN: `predict` and `export`."""
