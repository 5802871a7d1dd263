"""BlueprintPipeline's submit service."""
