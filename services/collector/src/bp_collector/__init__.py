"""BlueprintPipeline's episode collector: a gRPC server running episodes on a simulator backend."""
