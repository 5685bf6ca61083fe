"""Every diagram reads well in a modeler: fits a screen, nothing straddles a lane, no edge runs through a
shape, no label sits on a border or on another shape, no two elements share a name
(tests/support/diagram_geometry.py says how each is measured)."""

from __future__ import annotations

import pytest

from tests.support.catalogue import diagram_files, parse
from tests.support.diagram_geometry import Box, crosses, problems


@pytest.mark.parametrize("file", [p.name for p in diagram_files()])
def test_the_diagram_reads_well(file: str) -> None:
    assert problems(parse(diagram_files()[0].parent / file)) == []


def test_a_segment_crosses_a_box_only_through_its_interior() -> None:
    box = Box(100, 100, 100, 80)
    assert crosses(((150, 0), (150, 300)), box), "straight through"
    assert crosses(((0, 0), (300, 280)), box), "diagonally through"
    assert not crosses(((0, 100), (300, 100)), box.shrunk(2)), "along the border"
    assert not crosses(((0, 0), (90, 300)), box), "beside it"
    assert not crosses(((150, 0), (150, 99)), box), "ending before it"
