"""`python -m consultflow.survey`: runs the survey service."""

from consultflow.platform.bootstrap import run
from consultflow.survey.app import build

if __name__ == "__main__":
    run("survey", build)
