"""Testing a trained experiment: per-image test predictions and their statistics."""
