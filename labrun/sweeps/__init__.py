"""Sweeps: grids of configs planned here and started by launchers (docs/sweeps.md)."""
