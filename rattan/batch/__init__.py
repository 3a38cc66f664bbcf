"""Experiments at scale: experiment files, sweeps, runners and executors (local, Ray), results."""
