"""Embedding asset descriptions, with all-MiniLM-L6-v2 run in numpy."""
