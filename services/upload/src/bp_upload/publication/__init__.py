"""One dataset published: its location, source inventory, verified transfer, manifest and result."""
