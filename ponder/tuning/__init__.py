"""`ponder tune`: measure strategy configs on a tuning split and keep the ones worth their cost."""
