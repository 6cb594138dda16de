"""How many SMS segments a text takes: GSM-7 when every character allows, UCS-2 otherwise.

GSM-7 fits 160 units in one message and 153 per segment of a longer one; characters of
the extension table (``^{}\\[~]|€`` and form feed) take two units and are never split
across segments. UCS-2 fits 70 UTF-16 units, or 67 per segment; characters outside the
Basic Multilingual Plane (most emoji) take two units and are never split either.
"""

from dataclasses import dataclass

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM_SINGLE, GSM_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


@dataclass(frozen=True)
class SmsInfo:
    encoding: str  # "GSM-7" or "UCS-2"
    characters: int
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int
    per_segment: int  # the limit that applies: 160/153 or 70/67

    @property
    def remaining_in_segment(self) -> int:
        """Units left before the message needs another segment."""
        if self.segments <= 1:
            return self.per_segment - self.units
        return self.per_segment * self.segments - self.units


def _segments(costs: list[int], single: int, multi: int) -> int:
    total = sum(costs)
    if total <= single:
        return 1 if costs else 0
    segments, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            segments += 1
            used = 0
        used += cost
    return segments


def sms_info(text: str) -> SmsInfo:
    if all(char in GSM_BASIC or char in GSM_EXTENSION for char in text):
        costs = [2 if char in GSM_EXTENSION else 1 for char in text]
        segments = _segments(costs, GSM_SINGLE, GSM_MULTI)
        return SmsInfo(
            encoding="GSM-7",
            characters=len(text),
            units=sum(costs),
            segments=segments,
            per_segment=GSM_SINGLE if segments <= 1 else GSM_MULTI,
        )
    costs = [2 if ord(char) > 0xFFFF else 1 for char in text]
    segments = _segments(costs, UCS2_SINGLE, UCS2_MULTI)
    return SmsInfo(
        encoding="UCS-2",
        characters=len(text),
        units=sum(costs),
        segments=segments,
        per_segment=UCS2_SINGLE if segments <= 1 else UCS2_MULTI,
    )
