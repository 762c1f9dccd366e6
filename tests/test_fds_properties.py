"""Property tests of swarmkeeper.fds.

FDS is typed by content, so ``loads(dumps(x)) == x`` only holds for values whose text does not
look like another type (the string ``"5"`` reads back as the int ``5``). Hence two properties:
``dumps`` output is a fixpoint (reading and rewriting it changes nothing), for any Section; and an
exact round trip of values, types, order and comments for Sections whose strings cannot pass for
numbers or bools. A third proves arbitrary text gives a Section or an FDSError, nothing else.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmkeeper.fds import FDSError, Section, Value, dumps, loads

INT64 = st.integers(-(2**63), 2**63 - 1)
# Pieces that exercise escapes, separators, list marks, line handling and typed-looking text.
ESCAPABLE = [" ", "  ", "\t", "\n", "\r", "\r\n", "\\", "\\x", "\\s", "\\n", "\\d", "\ufeff", "\u2028", "\x0b", "\x85"]
MARKS = ["#", ":", ".", "=", "-", ">", "é", "💥", "5", "1E+20", "true", "NaN", "a"]
TRICKY = st.sampled_from(ESCAPABLE + MARKS)
TEXTS = st.text() | st.lists(TRICKY | st.text(max_size=3), max_size=8).map("".join)
COMMENT_LINES = st.lists(TEXTS.map(lambda text: text.replace("\r", "").replace("\n", "")), max_size=3)
FLOATS = st.floats(allow_nan=False)


def looks_typed(text: str) -> bool:
    """A superset of the strings FDS reads back as a number or a bool."""
    try:
        float(text)
    except ValueError:
        return text in ("true", "false")
    return True


def build(entries: list[tuple[str, Value, list[str]]], trailing: list[str]) -> Section:
    section = Section()
    for key, value, comments in entries:
        section.set(key, value, comments=comments)
    section.trailing_comments = trailing
    return section


def sections(strings: st.SearchStrategy[str], min_list: int) -> st.SearchStrategy[Section]:
    scalars = st.one_of(strings, INT64, FLOATS, st.booleans(), st.binary(max_size=12))
    leaves = scalars | st.lists(scalars, min_size=min_list, max_size=4)

    def section_of(values: st.SearchStrategy[Value]) -> st.SearchStrategy[Section]:
        entries = st.lists(st.tuples(TEXTS, values, COMMENT_LINES), max_size=4)
        return st.builds(build, entries, COMMENT_LINES)

    return section_of(st.recursive(leaves, section_of, max_leaves=12))


ANY_SECTION = sections(TEXTS, min_list=0)
# Empty lists read back as empty Sections, and typed-looking strings as numbers: leave both out.
EXACT_SECTION = sections(TEXTS.filter(lambda text: not looks_typed(text)), min_list=1)


def assert_same(expected: Value, actual: Value) -> None:
    """Equal values of the same type (a float may come back as an equal int), same keys in the
    same order, same comments."""
    if isinstance(expected, Section):
        assert isinstance(actual, Section) and list(actual) == list(expected)
        assert actual.trailing_comments == expected.trailing_comments
        for key in expected:
            assert actual.comments(key) == expected.comments(key)
            assert_same(expected[key], actual[key])
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected)
        for item, read in zip(expected, actual, strict=True):
            assert_same(item, read)
    elif isinstance(expected, float):
        assert isinstance(actual, float | int) and not isinstance(actual, bool) and actual == expected
        assert isinstance(actual, float) or expected.is_integer()
        assert math.copysign(1.0, actual) == math.copysign(1.0, expected)
    else:
        assert type(actual) is type(expected) and actual == expected


@given(ANY_SECTION)
def test_dumps_output_is_a_fixpoint(section: Section) -> None:
    text = dumps(section)
    assert dumps(loads(text)) == text


@given(EXACT_SECTION)
def test_round_trip_keeps_values_types_order_and_comments(section: Section) -> None:
    assert_same(section, loads(dumps(section)))


@given(TEXTS, TEXTS)
def test_any_key_and_untyped_string_value_round_trip(key: str, value: str) -> None:
    read = loads(dumps(Section({key: value})))
    assert list(read) == [key]
    if not looks_typed(value):
        assert read[key] == value


@given(FLOATS)
def test_floats_read_back_as_the_same_number(number: float) -> None:
    assert_same(number, loads(dumps(Section({"f": number})))["f"])


INDENTS = st.sampled_from(["", " ", "  ", "\t", "\t\t", "    ", "\t "])
VALID_BODIES = ["k: v", "k:", "k= QUJD", "- 1", "= QQ==", "#c", "", "k: \\x", "a\\db: 5", "k: NaN"]
BROKEN_BODIES = ["k=", "k= !", "> - a", ": v", "-", "x"]
BODIES = st.sampled_from(VALID_BODIES + BROKEN_BODIES) | TEXTS
ODD_LINE = st.tuples(INDENTS, BODIES).map("".join)


def perturb(text: str, unit: str, inserts: list[tuple[int, str]], newline: str) -> str:
    """A valid file re-indented with ``unit``, with odd lines slipped in."""
    lines = text.replace("\t", unit).split("\n")
    for position, line in inserts:
        lines.insert(position % (len(lines) + 1), line)
    return newline.join(lines)


PERTURBED = st.builds(
    perturb,
    ANY_SECTION.map(dumps),
    st.sampled_from(["\t", "    ", "  ", " "]),
    st.lists(st.tuples(st.integers(0, 99), ODD_LINE), max_size=3),
    st.sampled_from(["\n", "\r\n", "\r"]),
)
FDS_LIKE = st.lists(ODD_LINE, max_size=12).map("\n".join)


@settings(max_examples=400)
@given(TEXTS | FDS_LIKE | PERTURBED)
def test_arbitrary_text_gives_a_section_or_fdserror(text: str) -> None:
    try:
        parsed = loads(text)
    except FDSError as error:
        assert error.line >= 1 and f"line {error.line}:" in str(error)
        return
    canonical = dumps(parsed)
    assert dumps(loads(canonical)) == canonical
