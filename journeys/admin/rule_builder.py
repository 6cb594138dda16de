"""The segments admin's rule builder, reused for condition steps.

The builder (``segments/rule_builder.js``) edits a rule as nested groups and conditions and
writes the JSON into the form's textarea; it asks the page it is on for a live count by
posting ``{"rules": rule}`` as JSON. Condition steps answer that through
``condition_preview`` below.
"""

from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from journeys.ports import ports
from journeys.segment_conditions import leaf_language


def builder_options() -> dict:
    """What the builder offers: the same lists as on the segment form."""
    from segments.models import Segment
    from segments.rules.validation import (
        CHANNELS,
        DATE_FIELDS,
        DATE_OPERATORS,
        SCORE_MODELS,
        SCORE_OPERATORS,
        TEXT_FIELDS,
        TEXT_OPERATORS,
        VALUE_OPERATORS,
    )

    return {
        "valueOperators": list(VALUE_OPERATORS),
        "textFields": list(TEXT_FIELDS),
        "dateFields": list(DATE_FIELDS),
        "textOperators": list(TEXT_OPERATORS),
        "dateOperators": list(DATE_OPERATORS),
        "channels": list(CHANNELS),
        "scoreModels": list(SCORE_MODELS),
        "scoreOperators": list(SCORE_OPERATORS),
        "segmentKeys": list(Segment.objects.order_by("key").values_list("key", flat=True)),
    }


def condition_preview(request: HttpRequest, rule) -> JsonResponse:
    """How many customers a condition's rule holds for now, and a few of them.

    Faults come back by JSON path (``$.all[1].score.value``). A rule with conditions on
    the trigger payload is only checked, not counted: it depends on each trigger event.
    """
    from segments.selectors import rule_preview

    problems = ports.conditions.validate(rule, "$")
    if problems:
        return JsonResponse({"errors": dict(problems)}, status=400)
    if not _only_segment_language(rule):
        return JsonResponse(
            {
                "errors": {
                    "$": "valid; not counted, because payload conditions depend on each "
                    "trigger event"
                }
            }
        )
    count, sample = rule_preview(rules=rule, now=timezone.now())
    return JsonResponse(
        {
            "count": count,
            "sample": [
                {"id": customer.pk, "label": customer.external_id or f"anonymous #{customer.pk}"}
                for customer in sample
            ],
        }
    )


def _only_segment_language(rule) -> bool:
    kind, body = next(iter(rule.items()))
    if kind in ("all", "any"):
        return all(_only_segment_language(child) for child in body)
    if kind == "not":
        return _only_segment_language(body)
    return leaf_language(kind, body) == "segments"
