"""Statistics of reports: pure numpy functions over (n_runs, n_games) score matrices.

Never imports torch or ale-py: a report runs on a laptop with no emulator.
"""
