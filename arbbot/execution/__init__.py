"""Execution: risk checks, simulation, transaction building and submission; ``executor`` encodes calls to the project's executor contract."""
