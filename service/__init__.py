"""The triage service: engine, audit store, fairness audit, gRPC transport, metrics, CLI."""
