"""What the experiments learn: classes, a score or a score distribution."""
