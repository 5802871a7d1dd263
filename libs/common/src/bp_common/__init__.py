"""BlueprintPipeline's runtime: contracts, ports, adapters, delivery, ledger, config, telemetry."""

__version__ = "0.1.0"
