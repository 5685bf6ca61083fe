"""The one shared runtime every consultflow process starts with: settings, logging, database, NATS, gRPC."""
