"""BlueprintPipeline's export service."""
