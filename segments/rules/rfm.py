"""RFM: the named segments of the recency / frequency score grid, shared by SQL and Python.

Scores are quintiles from 1 to 5 (5 is the most recent, most frequent, highest spend).
The names follow the grid marketers know from Klaviyo, Braze and most RFM write-ups: the
recency score against the frequency score; monetary is a score of its own.
"""

# (name, recency scores, frequency scores), covering each of the 25 cells exactly once.
RFM_SEGMENTS: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = (
    ("champions", (5,), (4, 5)),
    ("loyal", (3, 4), (4, 5)),
    ("potential_loyalists", (4, 5), (2, 3)),
    ("new_customers", (5,), (1,)),
    ("promising", (4,), (1,)),
    ("need_attention", (3,), (3,)),
    ("about_to_sleep", (3,), (1, 2)),
    ("cant_lose", (1, 2), (5,)),
    ("at_risk", (1, 2), (3, 4)),
    ("hibernating", (1, 2), (1, 2)),
)
RFM_SEGMENT_NAMES = tuple(name for name, _, _ in RFM_SEGMENTS)
RFM_SCORES = ("recency", "frequency", "monetary")
RFM_BOUNDS = ("gte", "lte", "equals")


def rfm_segment(*, recency: int, frequency: int) -> str:
    """The named segment of a recency and a frequency score (1 to 5 each)."""
    for name, recencies, frequencies in RFM_SEGMENTS:
        if recency in recencies and frequency in frequencies:
            return name
    raise ValueError(f"scores must be 1 to 5, not {recency} and {frequency}")


def rfm_segment_sql(recency: str, frequency: str) -> str:
    """The same mapping as a SQL CASE over two integer columns (names are constants)."""
    branches = " ".join(
        f"WHEN {recency} IN ({', '.join(map(str, recencies))})"
        f" AND {frequency} IN ({', '.join(map(str, frequencies))}) THEN '{name}'"
        for name, recencies, frequencies in RFM_SEGMENTS
    )
    return f"CASE {branches} END"
