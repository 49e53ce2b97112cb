"""Collapse or thrive: exact theory and fast Monte Carlo of model collapse."""
