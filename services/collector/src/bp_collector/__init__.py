"""BlueprintPipeline's episode collector: a gRPC server that owns a simulator."""
