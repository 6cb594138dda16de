import pytest

from segments.models import Segment
from segments.services.definitions import (
    SegmentInvalid,
    segment_create,
    segment_delete,
    segment_update,
)
from tests.segments.factories import SegmentFactory

pytestmark = pytest.mark.django_db

PRO = {"trait": {"key": "plan", "op": "equals", "value": "pro"}}


def test_a_dynamic_segment_is_created_with_its_rule_checked():
    segment = segment_create(key="pro", name=" Pro customers ", rules=PRO)

    assert (segment.key, segment.name, segment.kind) == ("pro", "Pro customers", "dynamic")
    assert segment.version == 1
    assert segment.is_time_dependent is False


def test_an_invalid_rule_is_refused_with_paths_and_nothing_is_saved():
    rule = {"all": [PRO, {"event": {"name": "Order", "count": {"at_least": -1}}}]}

    with pytest.raises(SegmentInvalid) as refused:
        segment_create(key="bad", name="Bad", rules=rule)

    assert refused.value.errors == {
        "rules": {"$.all[1].event.count.at_least": "must be a whole number ≥ 0"}
    }
    assert Segment.objects.count() == 0


def test_a_bad_key_and_a_taken_key_are_refused():
    SegmentFactory(key="pro")

    with pytest.raises(SegmentInvalid) as taken:
        segment_create(key="pro", name="Again", rules=PRO)
    with pytest.raises(SegmentInvalid) as malformed:
        segment_create(key="Pro Customers", name="Pro", rules=PRO)

    assert taken.value.errors == {"key": "Segment with this Key already exists."}
    assert set(malformed.value.errors) == {"key"}
    assert Segment.objects.count() == 1


def test_references_to_unknown_segments_and_cycles_are_refused():
    a = segment_create(key="a", name="A", rules=PRO)
    segment_create(key="b", name="B", rules={"segment": {"key": "a"}})

    with pytest.raises(SegmentInvalid) as unknown:
        segment_create(key="c", name="C", rules={"any": [PRO, {"segment": {"key": "zz"}}]})
    with pytest.raises(SegmentInvalid) as cycle:
        segment_update(segment=a, rules={"not": {"segment": {"key": "b"}}})
    with pytest.raises(SegmentInvalid) as itself:
        segment_update(segment=a, rules={"segment": {"key": "a"}})

    assert unknown.value.errors == {
        "rules": {"$.any[1].segment.key": "there is no segment with the key zz"}
    }
    assert cycle.value.errors == {
        "rules": {"$.not.segment.key": "segment b depends on this segment: that would be a cycle"}
    }
    assert itself.value.errors == {"rules": {"$.segment.key": "a segment cannot contain itself"}}
    a.refresh_from_db()
    assert a.rules == PRO


def test_a_rule_change_bumps_the_version_and_time_dependence():
    segment = segment_create(key="pro", name="Pro", rules=PRO)

    segment = segment_update(segment=segment, name="Pro plan")
    assert segment.version == 1
    segment = segment_update(segment=segment, rules={"event": {"name": "Order", "within_days": 30}})

    assert (segment.name, segment.version, segment.is_time_dependent) == ("Pro plan", 2, True)


def test_key_and_kind_cannot_change():
    segment = segment_create(key="pro", name="Pro", rules=PRO)

    with pytest.raises(SegmentInvalid) as refused:
        segment_update(segment=segment, key="other", kind="static")

    assert refused.value.errors == {"key": "cannot be changed", "kind": "cannot be changed"}


def test_static_segments_have_no_rules():
    with pytest.raises(SegmentInvalid) as refused:
        segment_create(key="list", name="List", kind="static", rules=PRO)

    assert refused.value.errors == {
        "rules": {"$": "only dynamic and model-based segments have rules, not static ones"}
    }
    assert segment_create(key="list", name="List", kind="static").rules == {}


def test_a_segment_used_by_another_cannot_be_deleted():
    a = segment_create(key="a", name="A", rules=PRO)
    b = segment_create(key="b", name="B", rules={"segment": {"key": "a"}})

    with pytest.raises(SegmentInvalid) as refused:
        segment_delete(segment=a)
    segment_delete(segment=b)
    segment_delete(segment=a)

    assert refused.value.errors == {"key": "used in the rules of b"}
    assert Segment.objects.count() == 0
