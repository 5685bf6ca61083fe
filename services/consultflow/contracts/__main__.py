"""`python -m consultflow.contracts`: runs the contracts service."""

from consultflow.contracts.app import build
from consultflow.platform.bootstrap import run

if __name__ == "__main__":
    run("contracts", build)
