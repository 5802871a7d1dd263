"""The asset index and the licence policy its assets must meet."""
