"""`consultflow up`'s scale-out flags: how many processes of what, and the numbers it refuses."""

from __future__ import annotations

import pytest

from consultflow import SERVICES
from consultflow.cli.main import build_parser
from consultflow.cli.system import replica_counts


def test_the_flags_say_how_many_of_each() -> None:
    args = build_parser().parse_args(["up", "--orchestrators", "2", "--replicas", "3", "--nats-cluster", "3"])
    assert (args.orchestrators, args.replicas, args.nats_cluster) == (2, 3, 3)
    counts = replica_counts(args.orchestrators, args.replicas)
    assert counts == {"orchestrator": 2, **dict.fromkeys(SERVICES, 3)}


def test_by_default_one_of_each() -> None:
    args = build_parser().parse_args(["up"])
    assert (args.orchestrators, args.replicas, args.nats_cluster) == (1, 1, 1)


@pytest.mark.parametrize(
    "flags", [["--replicas", "0"], ["--orchestrators", "-1"], ["--replicas", "two"], ["--nats-cluster", "2"]]
)
def test_a_number_that_makes_no_system_is_refused(
    flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["up", *flags])
    assert exit_.value.code == 2
    assert flags[0] in capsys.readouterr().err
