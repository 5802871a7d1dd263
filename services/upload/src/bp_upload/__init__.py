"""BlueprintPipeline's upload service."""
