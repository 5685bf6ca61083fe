"""consultflow: a consulting firm's process regulation as executable BPMN, carried out by gRPC services."""

SERVICES = ("crm", "contracts", "delivery", "survey", "risk")
"""The five business services; each owns its data and takes the jobs `jobs.<service>.>`."""

COMPONENTS = ("orchestrator", *SERVICES)
"""Everything `consultflow up` starts besides NATS, in start order."""

CONSOLE = "console"
"""The browser workspace (docs/console.md): an HTTP server, not a gRPC one, with no database; `consultflow
up` starts it after the components, which is why it is not in `COMPONENTS`."""
