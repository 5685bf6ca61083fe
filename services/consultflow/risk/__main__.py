"""`python -m consultflow.risk`: runs the risk service."""

from consultflow.platform.bootstrap import run
from consultflow.risk.app import build

if __name__ == "__main__":
    run("risk", build)
