"""`python -m consultflow.crm`: runs the crm service."""

from consultflow.crm.app import build
from consultflow.platform.bootstrap import run

if __name__ == "__main__":
    run("crm", build)
