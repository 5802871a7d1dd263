"""The collector's jobs: stored, run on a pool of simulation processes, and recorded."""
