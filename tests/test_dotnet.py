"""SwarmUI's .NET parsing rules, which clients depend on."""

import pytest

from swarmkeeper import dotnet


@pytest.mark.parametrize(("value", "text"), [
    ("abc", "abc"), (5, "5"), (5.0, "5"), (5.5, "5.5"), (True, "True"), (False, "False"), (None, ""),
    ({"a": 1}, '{"a":1}'), ([1, "x"], '[1,"x"]'), (1e20, "1E+20"), (-0.25, "-0.25"),
])
def test_to_text_renders_like_jtoken(value: object, text: str) -> None:
    assert dotnet.to_text(value) == text


@pytest.mark.parametrize(("text", "number"), [
    ("5", 5), (" 5", 5), ("+5", 5), ("-7", -7), ("5 ", 5), ("\t12\n", 12), ("2147483647", 2**31 - 1),
    ("-2147483648", -(2**31)),
])
def test_int32_accepts(text: str, number: int) -> None:
    assert dotnet.parse_int(text) == number


@pytest.mark.parametrize("text", ["5.5", "", "True", "abc", "1e3", "2147483648", "0x10", "٣", "1_000", "+-1"])
def test_int32_rejects(text: str) -> None:
    assert dotnet.parse_int(text) is None


def test_int64_range() -> None:
    assert dotnet.parse_int("2147483648", 64) == 2**31
    assert dotnet.parse_int(str(2**63), 64) is None


@pytest.mark.parametrize(("text", "value"), [
    ("true", True), ("True", True), ("TRUE", True), (" false ", False), ("False", False),
])
def test_bool_accepts_any_case(text: str, value: bool) -> None:
    assert dotnet.parse_bool(text) is value


@pytest.mark.parametrize("text", ["1", "0", "yes", "", "t"])
def test_bool_rejects_numbers_and_words(text: str) -> None:
    assert dotnet.parse_bool(text) is None


@pytest.mark.parametrize(("text", "value"), [("1.5", 1.5), (" -2 ", -2.0), ("1e3", 1000.0), (".5", 0.5)])
def test_double(text: str, value: float) -> None:
    assert dotnet.parse_float(text) == value


@pytest.mark.parametrize("text", ["", "abc", "nan", "inf", "1.2.3", "1e999"])
def test_double_rejects(text: str) -> None:
    assert dotnet.parse_float(text) is None
