"""Two versions of one process for the migration tests: `onboarding:1` waits at `intake` (when
`path == "intake"`) or at `review`; `onboarding:2` has no `intake`, keeps `review` and adds `approve`
after it. Instances at `review` can move as they are; those at `intake` need a mapping."""

from __future__ import annotations

from tests.support.bpmn_builder import bpmn

V1 = bpmn(
    "onboarding",
    """<startEvent id="s"/><exclusiveGateway id="g"/>
    <userTask id="intake" camunda:candidateGroups="legal"/>
    <userTask id="review" camunda:candidateGroups="legal"/><endEvent id="e"/>""",
    'intake -> review\nreview -> e\ns -> g\ng -> intake: path == "intake"\ng -> review: default',
)
V2 = bpmn(
    "onboarding",
    """<startEvent id="s"/><userTask id="review" camunda:candidateGroups="legal"/>
    <userTask id="approve" camunda:candidateGroups="legal"/><endEvent id="e"/>""",
    "s -> review\nreview -> approve\napprove -> e",
)
