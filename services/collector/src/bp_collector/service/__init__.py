"""The collector's gRPC service and server: jobs in, progress and episodes out."""
