"""The images a run learns from: bundled and AVA datasets, listing, splits, pipelines."""
