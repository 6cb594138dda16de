import pytest

from segments.rules import RuleError, validate_rule

VALID_RULES = [
    {"trait": {"key": "plan", "op": "equals", "value": "pro"}},
    {"trait": {"key": "address.city", "op": "in", "value": ["Utrecht", "Delft"]}},
    {"trait": {"key": "age", "op": "between", "value": [18, 30.5]}},
    {"trait": {"key": "birthday", "op": "anniversary_within_days", "value": 7}},
    {"trait": {"key": "signed_up", "op": "before", "value": "2025-01-31T09:00:00Z"}},
    {"profile": {"field": "email", "op": "starts_with", "value": "anna"}},
    {"profile": {"field": "last_seen", "op": "more_than_days_ago", "value": 30}},
    {"event": {"name": "Order Completed"}},
    {"event": {"name": "Order Completed", "performed": False, "within_days": 90}},
    {
        "event": {
            "name": "Order Completed",
            "where": [{"property": "total", "op": "greater_or_equal", "value": 100}],
            "count": {"at_least": 2, "at_most": 5},
            "within_days": 30,
        }
    },
    {"segment": {"key": "vip"}},
    {"reachable": {"channel": "push"}},
    {
        "any": [
            {"not": {"trait": {"key": "plan", "op": "exists"}}},
            {"all": [{"reachable": {"channel": "email"}}, {"segment": {"key": "vip"}}]},
        ]
    },
]


@pytest.mark.parametrize("rule", VALID_RULES)
def test_valid_rules_pass(rule):
    validate_rule(rule)


INVALID_RULES = [
    (
        {
            "all": [
                {"trait": {"key": "plan", "op": "exists"}},
                {"reachable": {"channel": "email"}},
                {"event": {"name": "Order Completed", "count": {"at_least": -1}}},
            ]
        },
        {"$.all[2].event.count.at_least": "must be a whole number ≥ 0"},
    ),
    (
        {"trait": {"key": "plan", "op": "resembles", "value": "pro"}},
        {
            "$.trait.op": "must be one of equals, not_equals, in, less_than, less_or_equal, "
            "greater_than, greater_or_equal, between, contains, starts_with, exists, "
            "within_last_days, more_than_days_ago, anniversary_within_days, before, after"
        },
    ),
    ({"all": []}, {"$.all": "must be a non-empty list of rules"}),
    (
        [],
        {
            "$": "must be an object with one of the keys all, any, not, trait, profile, event, segment, reachable, score, cluster, consent, rfm"
        },
    ),
    (
        {"trait": {"key": "plan", "op": "equals"}, "segment": {"key": "vip"}},
        {
            "$": "must have exactly one of the keys all, any, not, trait, profile, event, segment, reachable, score, cluster, consent, rfm (found segment, trait)"
        },
    ),
    (
        {"trait": {"key": "age", "op": "less_than", "value": "30"}},
        {"$.trait.value": "must be a number"},
    ),
    (
        {"trait": {"key": "age", "op": "between", "value": [40, 30]}},
        {"$.trait.value": "the low bound must not be greater than the high bound"},
    ),
    (
        {"trait": {"key": "plan", "op": "exists", "value": True}},
        {"$.trait.value": "is not used with exists (wrap the condition in not)"},
    ),
    (
        {"trait": {"key": "a..b", "op": "exists"}},
        {"$.trait.key": "must not have an empty part between dots (use a.b for nesting)"},
    ),
    (
        {"trait": {"key": "plan", "op": "equals", "value": {"x": 1}}},
        {"$.trait.value": "must be a string, a number or true/false"},
    ),
    (
        {"trait": {"key": "signup", "op": "after", "value": "last tuesday"}},
        {"$.trait.value": "must be an ISO 8601 date such as 2025-01-31 or 2025-01-31T09:00:00Z"},
    ),
    (
        {"trait": {"key": "birthday", "op": "anniversary_within_days", "value": 400}},
        {"$.trait.value": "must be a whole number of days from 0 to 366"},
    ),
    (
        {"profile": {"field": "password", "op": "exists"}},
        {"$.profile.field": "must be one of email, phone, timezone, locale, first_seen, last_seen"},
    ),
    (
        {"profile": {"field": "email", "op": "greater_than", "value": 1}},
        {"$.profile.op": "must be one of equals, not_equals, in, contains, starts_with, exists"},
    ),
    (
        {"profile": {"field": "email", "op": "in", "value": ["a", 2]}},
        {"$.profile.value[1]": "must be a string"},
    ),
    ({"event": {"name": ""}}, {"$.event.name": "must be a non-empty event name"}),
    (
        {"event": {"name": "Order", "within_days": 0}},
        {"$.event.within_days": "must be a whole number of days from 1 to 36600"},
    ),
    (
        {"event": {"name": "Order", "count": {}}},
        {"$.event.count": "must give at_least, at_most or both"},
    ),
    (
        {"event": {"name": "Order", "count": {"at_least": 3, "at_most": 2}}},
        {"$.event.count": "at_least must not be greater than at_most"},
    ),
    (
        {"event": {"name": "Order", "count": {"at_least": True}}},
        {"$.event.count.at_least": "must be a whole number ≥ 0"},
    ),
    (
        {"event": {"name": "Order", "performed": False, "count": {"at_least": 1}}},
        {"$.event.count": "cannot be combined with performed: false"},
    ),
    (
        {
            "event": {
                "name": "Order",
                "where": [{"property": "total", "op": "between", "value": [1]}],
            }
        },
        {"$.event.where[0].value": "must be a list of two numbers [low, high]"},
    ),
    (
        {"event": {"name": "Order", "colour": "red"}},
        {
            "$.event.colour": "is not a known field (expected name, where, count, within_days, performed)"
        },
    ),
    ({"segment": {}}, {"$.segment.key": "is required"}),
    (
        {"reachable": {"channel": "pigeon"}},
        {"$.reachable.channel": "must be one of email, sms, push"},
    ),
    (
        {"not": {"any": [{"trait": {"key": "x", "op": "equals"}}]}},
        {"$.not.any[0].trait.value": "is required with equals"},
    ),
]


@pytest.mark.parametrize(("rule", "faults"), INVALID_RULES)
def test_invalid_rules_are_refused_with_the_path_to_the_fault(rule, faults):
    with pytest.raises(RuleError) as refused:
        validate_rule(rule)

    assert refused.value.as_dict() == faults


def test_every_fault_is_reported_not_only_the_first():
    rule = {
        "all": [
            {"trait": {"key": "", "op": "exists"}},
            {"event": {"name": "Order", "count": {"at_most": 1.5}}},
        ]
    }

    with pytest.raises(RuleError) as refused:
        validate_rule(rule)

    assert str(refused.value) == (
        "$.all[0].trait.key: must be a non-empty string; "
        "$.all[1].event.count.at_most: must be a whole number ≥ 0"
    )


def test_too_deep_nesting_is_refused():
    rule: dict = {"trait": {"key": "plan", "op": "exists"}}
    for _ in range(14):
        rule = {"not": rule}

    with pytest.raises(RuleError) as refused:
        validate_rule(rule)

    assert refused.value.as_dict() == {"$" + ".not" * 13: "rules may nest at most 12 levels deep"}
