"""`python -m consultflow.console`: runs the console's HTTP server (uvicorn) until SIGTERM."""

from __future__ import annotations

import uvicorn

from consultflow.console.app import build
from consultflow.console.config import ConsoleSettings
from consultflow.platform import metrics, tracing
from consultflow.platform.logging import configure_logging
from consultflow.platform.settings import setting

GRACEFUL_SHUTDOWN_SECONDS = 3


def main() -> None:
    settings = ConsoleSettings.from_env()
    configure_logging("console", settings.log_level, settings.log_format, ())
    tracing.configure("console", setting("CONSULTFLOW_OTLP_ENDPOINT"), setting("CONSULTFLOW_TRACE_FILE"))
    metrics_endpoint = metrics.start_component("console")  # gRPC calls it makes, its process
    uvicorn.run(
        build(settings),
        host=settings.listen_host,
        port=settings.listen_port,
        log_config=None,  # our logging, as every component's
        access_log=False,  # a request line would log a sign-in link's ticket
        proxy_headers=True,  # behind the Ingress, the client's scheme and address
        server_header=False,
        # open event streams never end by themselves: after this, a stop cancels them (browsers reconnect)
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    metrics_endpoint.stop()
    tracing.shutdown()


if __name__ == "__main__":
    main()
