import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.rendering.sms import GSM_BASIC, sms_info


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters count double
        ("€" * 81, "GSM-7", 162, 2),
        ("a" * 159 + "€", "GSM-7", 161, 2),  # 153 units per segment...
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),  # ...and the escape pair is not split
        ("Café à Paris {ok}", "GSM-7", 19, 1),
        ("Привет", "UCS-2", 6, 1),
        ("ç" * 70, "UCS-2", 70, 1),  # lower-case ç is not in GSM-7
        ("ç" * 71, "UCS-2", 71, 2),
        ("ç" * 134, "UCS-2", 134, 2),
        ("ç" * 135, "UCS-2", 135, 3),
        ("🎉" * 35, "UCS-2", 70, 1),  # emoji take two UTF-16 units
        ("🎉" * 36, "UCS-2", 72, 2),
        ("a" * 66 + "🎉" + "a" * 66, "UCS-2", 134, 3),  # the surrogate pair is not split
        ("Hi 👋🏽", "UCS-2", 7, 1),
    ],
)
def test_encoding_units_and_segments(text, encoding, units, segments):
    info = sms_info(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)
    assert info.characters == len(text)


def test_limits_reported_for_single_and_multipart():
    assert sms_info("a").per_segment == 160
    assert sms_info("a" * 200).per_segment == 153
    assert sms_info("🎉").per_segment == 70
    assert sms_info("🎉" * 40).per_segment == 67
    assert sms_info("a" * 150).remaining_in_segment == 10


@given(st.text(alphabet=sorted(GSM_BASIC), max_size=1000))
def test_basic_gsm_text_segments(text):
    info = sms_info(text)
    assert info.encoding == "GSM-7"
    expected = 0 if not text else 1 if len(text) <= 160 else -(-len(text) // 153)
    assert info.segments == expected
