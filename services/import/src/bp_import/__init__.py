"""BlueprintPipeline's import service."""
