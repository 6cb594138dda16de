"""The segment rule language: validation, the SQL compiler and the single-customer evaluator.

See docs/segments.md for the language itself.
"""

from segments.rules.compiler import compile_rule
from segments.rules.dependencies import Dependencies, rule_dependencies, segment_references
from segments.rules.evaluator import CustomerSnapshot, EventFact, evaluate_rule
from segments.rules.validation import RuleError, RuleFault, validate_rule

__all__ = [
    "CustomerSnapshot",
    "Dependencies",
    "EventFact",
    "RuleError",
    "RuleFault",
    "compile_rule",
    "evaluate_rule",
    "rule_dependencies",
    "segment_references",
    "validate_rule",
]
