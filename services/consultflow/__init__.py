"""consultflow: a consulting firm's process regulation as executable BPMN, carried out by gRPC services."""

SERVICES = ("crm", "contracts", "delivery", "survey", "risk")
"""The five business services; each owns its data and takes the jobs `jobs.<service>.>`."""

COMPONENTS = ("orchestrator", *SERVICES)
"""Everything `consultflow up` starts besides NATS, in start order."""
