"""The executor: the same spec as a real torch network, checked and timed (needs torch)."""
