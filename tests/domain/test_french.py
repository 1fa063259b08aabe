"""French figures for people (domain.french, the web's filters): commas, spaces, plurals, Paris time."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from domain import french

NN = "\u202f"  # narrow no-break space
NB = "\u00a0"  # no-break space


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (3.0, "3"),
        (12.3456, "12,35"),
        (0.12345, "0,1235"),
        (1234.56, f"1{NN}235"),
        (1234567, f"1{NN}234{NN}567"),
        (-0.5, "-0,5"),
        (0.00001234, "0,00001234"),  # never « 1,234e-05 »
        (-0.000000001, "0"),  # no « -0 »
        (np.float64(2.5), "2,5"),
        (np.int64(12), "12"),
    ],
)
def test_number_is_french_and_never_scientific(value: object, text: str) -> None:
    assert french.number(value) == text


@pytest.mark.parametrize("missing", [None, float("nan"), float("inf"), "12", True, ""])
def test_nothing_reads_as_a_dash_never_none(missing: object) -> None:
    assert french.number(missing) == "—"
    assert french.measure(missing, "repas", with_unit=True) == "—"
    assert french.percent(missing) == "—"
    assert french.duration(missing) == "—"


def test_percent_has_a_comma_and_a_no_break_space_before_the_sign() -> None:
    assert french.percent(0.054) == f"5,4{NN}%"
    assert french.percent(0.0545, 2) == f"5,45{NN}%"
    assert french.percent(1) == f"100,0{NN}%"
    assert french.measure(0.123, "fraction", with_unit=True) == f"12,3{NN}%"


def test_measure_puts_the_unit_in_the_right_number() -> None:
    assert french.measure(12.3, "repas", with_unit=True) == f"12,3{NB}repas"
    assert french.measure(4, "jour", with_unit=True) == f"4{NB}jours"
    assert french.measure(1, "jour", with_unit=True) == f"1{NB}jour"
    assert french.measure(0, "jour", with_unit=True) == f"0{NB}jour"
    assert french.measure(45.2, "µg/m³", with_unit=True) == f"45,2{NB}µg/m³"
    assert french.measure(4, "jour") == "4"  # the unit only when asked


def test_plural_the_french_way() -> None:
    assert french.plural(0, "modèle") == "0 modèle"
    assert french.plural(1, "jour") == "1 jour"
    assert french.plural(2, "jour") == "2 jours"
    assert french.plural(1.5, "jour") == "1,5 jour"
    assert french.plural(3, "repas") == "3 repas"
    assert french.plural(2, "travail", "travaux") == "2 travaux"
    assert french.plural(2, "jour de test") == "2 jours de test"
    assert french.plural(12000, "cantine") == f"12{NN}000 cantines"
    assert french.plural(["a", "b", "c"], "modèle") == "3 modèles"  # a list counts its items
    assert french.plural(None, "jour") == "—"
    assert french.plural_word(3, "min") == "min" and french.plural_word(3, "h") == "h"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (3.5, f"3,5{NB}s"),
        (42, f"42{NB}s"),
        (150, f"2{NB}min{NB}30{NB}s"),
        (185, f"3{NB}min{NB}05{NB}s"),
        (3725, f"1{NB}h{NB}02{NB}min"),
        (86_400, f"1{NB}jour"),
        (4 * 86_400, f"4{NB}jours"),
        (4 * 86_400 + 7200, f"4{NB}jours{NB}2{NB}h"),
    ],
)
def test_durations(seconds: float, text: str) -> None:
    assert french.duration(seconds) == text


def test_dates_and_months() -> None:
    assert french.date("2026-03-01") == "1er mars 2026"
    assert french.date(dt.date(2026, 12, 25)) == "25 décembre 2026"
    assert french.date_short("2017-11-06") == "6 nov. 2017"
    assert french.month_short("2017-12-01") == "déc. 2017"
    assert french.date(None) == ""
    assert french.date("pas une date") == "pas une date"


def test_moments_are_shown_in_paris_time() -> None:
    # bibia stores naive UTC moments: 13:05 UTC in winter is 14:05 in Paris, 23:30 UTC in July
    # is 1:30 the next day
    assert french.moment("2026-03-01T13:05:00") == f"1er mars 2026 à 14{NB}h{NB}05"
    assert french.moment("2026-07-01T23:30:00+00:00") == f"2 juillet 2026 à 1{NB}h{NB}30"
    assert (
        french.moment(dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC))
        == f"5 janvier 2026 à 9{NB}h{NB}00"
    )
    assert french.moment(None) == "—"


def test_the_day_of_a_moment_is_its_day_in_paris() -> None:
    assert french.date("2026-03-01T23:30:00") == "2 mars 2026"  # 00:30 in Paris
    assert french.date(dt.datetime(2026, 3, 1, 23, 30)) == "2 mars 2026"
    assert french.date("2026-03-01") == "1er mars 2026"  # a day stays that day


def test_date_ticks_are_as_precise_as_the_ticks() -> None:
    assert french.date_ticks(["2017-12-12", "2017-12-19"]) == ["12 déc. 2017", "19 déc. 2017"]
    assert french.date_ticks(["2017-12-01", "2018-01-01"]) == ["déc. 2017", "janv. 2018"]
    assert french.date_ticks(["2017-01-01", "2018-01-01"]) == ["2017", "2018"]
    assert french.date_ticks(["2016-12-12", "2018-12-19"]) == ["déc. 2016", "déc. 2018"]
    assert french.date_ticks(["2016-12-12", "2018-12-19"], by_span=False) == [
        "12 déc. 2016",
        "19 déc. 2018",
    ]
    assert french.date_ticks(["2017-12-12T14:30:00", "2017-12-12T16:00:00"]) == [
        "12 déc. 2017 14\u00a0h\u00a030",
        "12 déc. 2017 16\u00a0h",
    ]
    assert french.date_ticks(["a", 20180101, None]) == ["a", "20180101", ""]


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0\u00a0octet"),
        (1, "1\u00a0octet"),
        (512, "512\u00a0octets"),
        (999, "999\u00a0octets"),
        (1000, "1\u00a0ko"),
        (1234, "1,2\u00a0ko"),
        (1_200_000, "1,2\u00a0Mo"),
        (34_560_000, "34,6\u00a0Mo"),
        (123_456_789, "123\u00a0Mo"),
        (999_960, "1\u00a0Mo"),
        (1_100_000_000, "1,1\u00a0Go"),
        (None, "—"),
        (-1, "—"),
    ],
)
def test_file_sizes(count: object, text: str) -> None:
    assert french.size(count) == text
