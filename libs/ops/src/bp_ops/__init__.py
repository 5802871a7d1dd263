"""BlueprintPipeline's operator tools: the embedded run, the local stack and its emulators, the
status page, and the `bp` commands that drive them (run, up, drop, runs, dlq, status)."""
