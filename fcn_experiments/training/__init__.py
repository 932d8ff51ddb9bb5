"""Training one experiment: the resumable loop, its precision and distribution strategy."""
