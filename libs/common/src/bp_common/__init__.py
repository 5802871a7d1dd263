"""BlueprintPipeline's shared platform: contracts, adapters, service runtime and CLI."""

__version__ = "0.1.0"
