"""Experiments at scale: sweeps of real runs, their results in a database, tables and plots."""
