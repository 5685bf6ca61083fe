"""The console: a browser workspace (tasks, operate, modeler) that talks gRPC to the components as the
signed-in person; docs/console.md."""
