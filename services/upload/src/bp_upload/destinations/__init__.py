"""Where datasets are published: the destination port, Firebase Storage, a folder, checksums."""
