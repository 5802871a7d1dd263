"""Dataset analytics: what the episodes of a dataset show, computed from their arrays."""
