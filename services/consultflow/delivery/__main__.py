"""`python -m consultflow.delivery`: runs the delivery service."""

from consultflow.delivery.app import build
from consultflow.platform.bootstrap import run

if __name__ == "__main__":
    run("delivery", build)
