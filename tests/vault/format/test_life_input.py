"""The owner's dates as typed: one canonical value each, or one clear refusal."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_keys.errors import InvalidInputError
from vault.format.life_input import (
    describe_period,
    parse_contact,
    parse_expiry,
    parse_period,
    parse_rotation,
)


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("2027-03-31", "2027-03-31T00:00:00+00:00"),
        ("2027-03-31T18:00:00+02:00", "2027-03-31T16:00:00+00:00"),
        ("2027-03-31T18:00Z", "2027-03-31T18:00:00+00:00"),
        ("2027-03-31t00:30:59.999-01:30", "2027-03-31T02:00:59+00:00"),
        ("2028-02-29", "2028-02-29T00:00:00+00:00"),
        ("none", None),
    ],
)
def test_an_expiry_is_stored_as_a_utc_instant(text: str, stored: str | None) -> None:
    assert parse_expiry(text) == stored


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2027-03-31T18:00:00", "no offset"),
        ("1999-12-31", "year"),
        ("2200-01-01", "year"),
        ("0001-01-01", "year"),
        ("2027-02-30", "not a real date"),
        ("2027-03-31T24:00Z", "not a real date"),
        ("2027-03-31T10:00+24:00", "not a real date"),
        ("\uff12\uff10\uff12\uff17-03-31", "an expiry is"),
        ("٢٠٢٧-03-31", "an expiry is"),
        ("2027-3-31", "an expiry is"),
        ("20270331", "an expiry is"),
        ("2027-03-31\n", "an expiry is"),
        ("2027-03-31T18:00:00+02:00\r\nX: y", "an expiry is"),
        ("", "an expiry is"),
        ("None", "an expiry is"),
        ("tomorrow", "an expiry is"),
        ("2027-03-31T18:00:00+0200", "an expiry is"),
        ("2" * 10_000, "an expiry is"),
    ],
)
def test_a_bad_expiry_is_refused_with_one_sentence(text: str, says: str) -> None:
    with pytest.raises(InvalidInputError, match=says):
        parse_expiry(text)


@given(
    st.datetimes(
        min_value=datetime.datetime(2000, 1, 2),
        max_value=datetime.datetime(2199, 12, 30),
        timezones=st.sampled_from(
            [
                datetime.UTC,
                datetime.timezone(datetime.timedelta(hours=5, minutes=45)),
                datetime.timezone(datetime.timedelta(hours=-9, minutes=-30)),
            ]
        ),
    )
)
def test_any_instant_with_an_offset_is_the_same_instant_stored(moment: datetime.datetime) -> None:
    moment = moment.replace(microsecond=0)
    stored = parse_expiry(moment.isoformat())
    assert stored is not None and datetime.datetime.fromisoformat(stored) == moment
    assert parse_expiry(stored) == stored  # the stored form reads back as itself


@given(st.text(max_size=60))
def test_any_text_is_an_instant_or_one_refusal(text: str) -> None:
    try:
        stored = parse_expiry(text)
    except InvalidInputError:
        return
    assert stored is None or datetime.datetime.fromisoformat(
        stored
    ).utcoffset() == datetime.timedelta(0)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90d", 90 * 86400), ("12w", 84 * 86400), ("36h", 36 * 3600), ("1d", 86400),
     ("24h", 86400), ("3650d", 3650 * 86400), ("none", None)],
)  # fmt: skip
def test_a_rotation_period_is_stored_in_seconds(text: str, seconds: int | None) -> None:
    assert parse_rotation(text) == seconds


@pytest.mark.parametrize(
    ("text", "says"),
    [("6m", "months"), ("1y", "months"), ("90", "months"), ("0d", "1 day"), ("23h", "1 day"),
     ("3651d", "10 years"), ("522w", "10 years"), ("-1d", "months"), ("1.5d", "months"),
     ("\uff19\uff10d", "months"), ("90D", "months"), (" 90d", "months"), ("90d\n", "months"),
     ("9" * 400 + "d", "months"), ("", "months")],
)  # fmt: skip
def test_a_bad_rotation_period_is_refused(text: str, says: str) -> None:
    with pytest.raises(InvalidInputError, match=says):
        parse_rotation(text)


@given(st.integers(min_value=1, max_value=3650))
def test_a_period_in_days_reads_back_as_typed(days: int) -> None:
    assert describe_period(parse_period(f"{days}d", "a period")) == f"{days}d"


@pytest.mark.parametrize(
    ("text", "stored"),
    [("dba@example.com", "dba@example.com"),
     ("Ops.Team+db@Mail.Example.ORG", "Ops.Team+db@mail.example.org"),
     ("a@b-c.io", "a@b-c.io"), ("none", None)],
)  # fmt: skip
def test_a_contact_is_one_address(text: str, stored: str | None) -> None:
    assert parse_contact(text) == stored


@pytest.mark.parametrize(
    "text",
    ["dba", "dba@", "@example.com", "dba@example", "a@@example.com", "a@b@example.com",
     "dba@example.com\r\nBcc: all@example.com", "dba@example.com\n", " dba@example.com",
     "Dba <dba@example.com>", '"dba"@example.com', "dba@[127.0.0.1]", ".dba@example.com",
     "d..ba@example.com", "dba.@example.com", "dba@-example.com", "dba@example-.com",
     "dba@example..com", "dba@example.123", "dbä@example.com", "dba@exämple.com",
     "dba@xn--exmple-cua.com\x00", "a" * 65 + "@example.com", "a@" + "b" * 250 + ".com",
     "dba@example.com,eve@example.com", ""],
)  # fmt: skip
def test_a_bad_contact_is_refused(text: str) -> None:
    with pytest.raises(InvalidInputError, match="a contact is one e-mail address"):
        parse_contact(text)


@given(st.text(max_size=80))
def test_any_accepted_contact_has_no_line_break_or_space(text: str) -> None:
    try:
        stored = parse_contact(text)
    except InvalidInputError:
        return
    assert stored is None or (stored.isascii() and not any(c.isspace() for c in stored))
