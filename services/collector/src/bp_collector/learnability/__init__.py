"""The learnability check: a behaviour-cloning policy trained on a dataset, run in simulation."""
