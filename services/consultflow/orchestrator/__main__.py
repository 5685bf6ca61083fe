"""`python -m consultflow.orchestrator`: runs the orchestrator."""

from consultflow.orchestrator.app import build
from consultflow.platform.bootstrap import run

if __name__ == "__main__":
    run("orchestrator", build)
