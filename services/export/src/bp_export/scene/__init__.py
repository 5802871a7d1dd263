"""The scene model read from the USD, reconciled with its manifest, and its scene graph."""
