"""Example-based tests of swarmkeeper.fds: SwarmUI-written files, escapes, types, errors, the API."""

from __future__ import annotations

import math

import pytest

from swarmkeeper.fds import FDSError, Section, dumps, loads

# Backends.fds as SwarmUI writes it: ids as root keys, every setting after its comment lines.
BACKENDS_FDS = """\
0:
\ttype: comfyui_selfstart
\ttitle: \\x
\tenabled: true
\tsettings:
\t\t#The location of the 'main.py' file. Can be an absolute or relative path, but must end with 'main.py'.
\t\t#If you used the installer, this should be 'dlbackend/comfy/ComfyUI/main.py'.
\t\tStartScript: dlbackend/comfy/ComfyUI/main.py
\t\t#Any arguments to include in the launch script.
\t\tExtraArgs: --preview-method auto
\t\t#If unchecked, the system will automatically add some relevant arguments to the comfy launch.
\t\tDisableInternalArgs: false
\t\t#Whether the Comfy backend should automatically update itself during launch.
\t\tAutoUpdate: aggressive
\t\tUpdateManagedNodes: false
\t\tFrontendVersion: LatestSwarmValidated
\t\tEnablePreviews: true
\t\t#Which GPU to use, if multiple are available.
\t\tGPU_ID: 0,1
\t\tOverQueue: 1
\t\tAutoRestart: true
1:
\ttype: comfyui_api
\ttitle: \\x Remote box \\x
\tenabled: false
\tsettings:
\t\t#The address of the ComfyUI instance, eg 'http://localhost:8188'.
\t\tAddress: http://192.168.1.20:8188/
\t\tAllowIdle: false
\t\t#How many extra requests may queue up on this backend while one is processing.
\t\tOverQueue: -1
\t\tEnableFrontendDev: false
2:
\ttype: swarmswarmbackend
\ttitle: Other swarm
\tenabled: true
\tsettings:
\t\tAddress: http://gpu-box:7801
\t\tAllowIdle: true
\t\tAllowForwarding: true
\t\tAllowWebsocket: true
\t\t#Optional 'Authorization' header for the remote Swarm instance.
\t\tAuthorizationHeader: Bearer s3cr3t:with\\sback\\sslashes
\t\tOtherHeaders: X-One: 1\\nX-Two: two
\t\tConnectionAttemptTimeoutSeconds: 30
7:
\ttype: some_extension_backend
\ttitle: \\x
\tenabled: true
\tsettings:
\t\tModelRoot: /models
\t\tTemperature: 0.75
\t\tBig: 1E+20
\t\tPaths:
\t\t- /a
\t\t- /b c
\t\tToken= c2VjcmV0
"""

# A Settings.fds extract: a commented sub-section and a top-level value after it.
SETTINGS_FDS = """\
#Settings related to file paths.
Paths:
\t#Root path for model files. Use a full-formed path (starting with '/' or 'C:') for an absolute path.
\t#Defaults to 'Models'.
\tModelRoot: Models
#Settings related to backends.
Backends:
\t#How many times to retry initializing a backend before giving up. Default is 3.
\tMaxBackendInitAttempts: 3
\t#Safety check, the maximum duration all requests can be waiting for a backend.
\tMaxTimeoutMinutes: 120
\t#The maximum duration an individual request can be waiting on a backend to be available before giving up.
\t#Defaults to 60 * 24 * 7 = 1 week (ultra-long max queue duration).
\tPerRequestTimeoutMinutes: 10080
\t#How long to wait before freeing memory.
\tClearVRAMAfterMinutes: 10
#How likely an outdated image metadata entry is to be revalidated.
ImageDataValidationChance: 0.05
#If this is set to 'true', hides the installer page. If 'false', the installer page will be shown.
IsInstalled: true
"""


def section_at(root: Section, *path: str) -> Section:
    """The section at ``path``, asserting every step is a section."""
    for key in path:
        value = root[key]
        assert isinstance(value, Section), f"{key!r} holds {value!r}"
        root = value
    return root


@pytest.mark.parametrize("text", [BACKENDS_FDS, SETTINGS_FDS], ids=["backends", "settings"])
def test_swarmui_written_files_round_trip_byte_for_byte(text: str) -> None:
    assert dumps(loads(text)) == text


def test_backends_file_values_and_types() -> None:
    root = loads(BACKENDS_FDS)
    assert list(root) == ["0", "1", "2", "7"]
    selfstart = root["0"]
    assert isinstance(selfstart, Section)
    assert selfstart["title"] == ""
    assert selfstart["enabled"] is True
    settings = selfstart["settings"]
    assert isinstance(settings, Section)
    assert settings["StartScript"] == "dlbackend/comfy/ComfyUI/main.py"
    assert settings["GPU_ID"] == "0,1"
    assert settings["OverQueue"] == 1 and type(settings["OverQueue"]) is int
    assert settings["AutoUpdate"] == "aggressive"
    assert settings.comments("StartScript") == [
        "The location of the 'main.py' file. Can be an absolute or relative path, but must end with 'main.py'.",
        "If you used the installer, this should be 'dlbackend/comfy/ComfyUI/main.py'.",
    ]
    assert settings.comments("UpdateManagedNodes") == []


def test_backends_file_escapes_secrets_and_unknown_types() -> None:
    root = loads(BACKENDS_FDS)
    assert section_at(root, "1")["title"] == " Remote box "
    assert section_at(root, "1", "settings")["OverQueue"] == -1
    swarm = section_at(root, "2", "settings")
    assert swarm["AuthorizationHeader"] == "Bearer s3cr3t:with\\back\\slashes"
    assert swarm["OtherHeaders"] == "X-One: 1\nX-Two: two"
    unknown = section_at(root, "7", "settings")
    assert unknown["Temperature"] == 0.75
    assert unknown["Big"] == 1e20 and isinstance(unknown["Big"], float)
    assert unknown["Paths"] == ["/a", "/b c"]
    assert unknown["Token"] == b"secret"


def test_settings_file_comments_on_sections_and_values() -> None:
    root = loads(SETTINGS_FDS)
    assert root.comments("Backends") == ["Settings related to backends."]
    backends = root["Backends"]
    assert isinstance(backends, Section)
    assert backends["PerRequestTimeoutMinutes"] == 10080
    assert backends.comments("PerRequestTimeoutMinutes") == [
        "The maximum duration an individual request can be waiting on a backend to be available before giving up.",
        "Defaults to 60 * 24 * 7 = 1 week (ultra-long max queue duration).",
    ]
    assert root["ImageDataValidationChance"] == 0.05
    assert root.comments("IsInstalled")[0].startswith("If this is set to 'true'")


def test_building_a_backend_entry_writes_swarmui_layout() -> None:
    settings = Section()
    settings.set("StartScript", "dlbackend/comfy/ComfyUI/main.py", comments=["The location.", "Second line."])
    settings.set("ExtraArgs", "", comments=["Any arguments."])
    settings.set("OverQueue", 1)
    entry = Section({"type": "comfyui_selfstart", "title": "", "enabled": True, "settings": settings})
    assert dumps(Section({"0": entry})) == (
        "0:\n\ttype: comfyui_selfstart\n\ttitle: \\x\n\tenabled: true\n\tsettings:\n"
        "\t\t#The location.\n\t\t#Second line.\n\t\tStartScript: dlbackend/comfy/ComfyUI/main.py\n"
        "\t\t#Any arguments.\n\t\tExtraArgs: \\x\n\t\tOverQueue: 1\n"
    )


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("", "\\x"),
        ("plain", "plain"),
        ("a\\b", "a\\sb"),
        ("tab\there", "tab\\there"),
        ("two\nlines\r", "two\\nlines\\r"),
        (" lead", "\\x lead"),
        ("trail ", "trail \\x"),
        ("  ", "\\x  \\x"),
        ("# not a comment", "# not a comment"),
        ("a: b = c.d", "a: b = c.d"),
        ("\\x", "\\sx"),
        ("ünïcødé ✓", "ünïcødé ✓"),
    ],
)
def test_string_value_escapes(value: str, written: str) -> None:
    text = dumps(Section({"k": value}))
    assert text == f"k: {written}\n"
    assert loads(text)["k"] == value


@pytest.mark.parametrize(
    ("key", "written"),
    [
        ("", "\\x"),
        ("a.b", "a\\db"),
        ("a:b", "a\\cb"),
        ("a=b", "a\\eb"),
        ("-dash", "\\x-dash"),
        (">gt", "\\x>gt"),
        ("#hash", "\\x#hash"),
        ("=eq", "\\eeq"),
        (" edge ", "\\x edge \\x"),
        ("back\\slash\td", "back\\sslash\\td"),
    ],
)
def test_key_escapes(key: str, written: str) -> None:
    text = dumps(Section({key: 1}))
    assert text == f"{written}: 1\n"
    assert list(loads(text)) == [key]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("0", 0),
        ("-17", -17),
        ("9223372036854775807", 9223372036854775807),
        ("-9223372036854775808", -9223372036854775808),
        ("9223372036854775808", "9223372036854775808"),
        ("01", "01"),
        ("+1", "+1"),
        ("1.5", 1.5),
        ("1.0", "1.0"),
        ("0.50", "0.50"),
        (".5", ".5"),
        ("1E+20", 1e20),
        ("1e+20", "1e+20"),
        ("1E20", "1E20"),
        ("1E-05", 1e-05),
        ("0.00001", "0.00001"),
        ("1E+15", 1e15),
        ("1000000000000000", 1000000000000000),
        ("Infinity", math.inf),
        ("-Infinity", -math.inf),
        ("inf", "inf"),
        ("true", True),
        ("false", False),
        ("True", "True"),
        ("1,000", "1,000"),
        ("1_000", "1_000"),
        ("\u0661", "\u0661"),
    ],
)
def test_scalars_are_typed_like_interpret_type(written: str, expected: object) -> None:
    value = loads(f"k: {written}\n")["k"]
    assert value == expected
    assert type(value) is type(expected)


def test_negative_zero_and_nan_are_doubles() -> None:
    negative_zero, nan = loads("k: -0")["k"], loads("k: NaN")["k"]
    assert isinstance(negative_zero, float) and math.copysign(1.0, negative_zero) == -1.0
    assert isinstance(nan, float) and math.isnan(nan)


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (1.0, "1"),
        (0.5, "0.5"),
        (-2.25, "-2.25"),
        (1e20, "1E+20"),
        (1e15, "1E+15"),
        (2.5e15, "2.5E+15"),
        (1e14, "100000000000000"),
        (1234567890123456.0, "1234567890123456"),
        (0.0001, "0.0001"),
        (1e-05, "1E-05"),
        (1.5e-07, "1.5E-07"),
        (0.1 + 0.2, "0.30000000000000004"),
        (-0.0, "-0"),
        (5e-324, "5E-324"),
        (1.7976931348623157e308, "1.7976931348623157E+308"),
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
        (math.nan, "NaN"),
    ],
)
def test_floats_are_written_like_dotnet_double_tostring(value: float, written: str) -> None:
    assert dumps(Section({"k": value})) == f"k: {written}\n"


def test_type_ambiguities_are_normalised_on_read() -> None:
    read = loads(dumps(Section({"s": "5", "b": "true", "f": 5.0, "big": 1e15, "empty": []})))
    assert read["s"] == 5 and type(read["s"]) is int
    assert read["b"] is True
    assert read["f"] == 5 and type(read["f"]) is int
    assert read["big"] == 1e15 and type(read["big"]) is float
    assert read["empty"] == Section()


def test_bytes_values_and_lists() -> None:
    section = Section({"blob": b"\x00\xffdata", "none": b"", "items": ["", " x ", 3, 2.5, False, b"", b"ab"]})
    text = dumps(section)
    assert text == "blob= AP9kYXRh\nnone= \\x\nitems:\n- \\x\n- \\x x \\x\n- 3\n- 2.5\n- false\n= \n= YWI=\n"
    assert loads(text) == section


@pytest.mark.parametrize(
    "text",
    [
        "a:\r\n\tb: 1\r\n\tc:\r\n\t- x\r\n",
        "a:\r\tb: 1\r\tc:\r\t- x\r",
        "\ufeffa:\n    b: 1\n    c:\n    - x\n",
        "\n\na:\n\n  b: 1   \n  c:\n\n  - x\n\n",
        "a:\n  b:1\n  c:\n  -x",
        "a:\n\t    b: 1\n        c:\n        - x\n",
    ],
    ids=["crlf", "cr", "bom", "blank-lines-two-spaces", "no-space-after-marks", "tab-equals-four-spaces"],
)
def test_tolerated_layouts(text: str) -> None:
    assert loads(text) == Section({"a": Section({"b": 1, "c": ["x"]})})


def test_comments_before_a_key_attach_to_it_whatever_their_indentation() -> None:
    root = loads("#top\na:\n#for b, unindented\n  \t  b: 1\n\t#for c, indented\nc: 2\n#end\n")
    assert root.comments("a") == ["top"]
    assert section_at(root, "a").comments("b") == ["for b, unindented"]
    assert root.trailing_comments == ["end"]
    # A comment after a section's last key, indented under it, belongs to that section's end:
    assert section_at(root, "a").trailing_comments == ["for c, indented"]
    assert root.comments("c") == []


def test_trailing_comments_of_nested_sections_stay_in_place() -> None:
    text = "a:\n\tb:\n\t\tc: 1\n\t\t#end of b\n\t#about empty\n\tempty:\n\t\t#inside empty\n#about d\nd: 1\n"
    root = loads(text)
    assert section_at(root, "a", "b").trailing_comments == ["end of b"]
    assert section_at(root, "a").comments("empty") == ["about empty"]
    empty = section_at(root, "a", "empty")
    assert empty == Section() and empty.trailing_comments == ["inside empty"]
    assert root.comments("d") == ["about d"]
    assert dumps(root) == text


def test_list_item_comments_are_dropped_and_following_comments_kept() -> None:
    root = loads("l:\n#about x\n- x\n- y\n#about k\nk: v\n")
    assert root["l"] == ["x", "y"]
    assert root.comments("k") == ["about k"]


def test_duplicate_keys_keep_the_first_position_and_the_last_value() -> None:
    root = loads("a: 1\nb: 2\n#second a\na: 3\n")
    assert list(root.items()) == [("a", 3), ("b", 2)]
    assert root.comments("a") == ["second a"]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("a: 1\n  b: 2\n", 2, "indented 2 spaces where 0"),
        ("- item\n", 1, "list item needs a 'key:'"),
        ("a:\n\t- item\n", 2, "list item needs a 'key:'"),
        ("\n\njust text\n", 3, "expected 'key: value'"),
        ("a: 1\n: v\n", 2, "empty key"),
        ("a=\n", 1, "binary data must follow"),
        ("a= not base64!\n", 1, "invalid base64"),
        ("a= QQ\n", 1, "invalid base64"),
        ("l:\n- x\n  - y\n", 3, "inside a list"),
        ("l:\n> - x\n", 2, "not supported"),
        ("l:\n>\tk: v\n", 2, "not supported"),
        ("a:\n    b:\n        c: 1\n  d: 2\n", 4, "indented 2 spaces where 0"),
    ],
)
def test_malformed_text_raises_fdserror_with_the_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(FDSError, match=reason) as caught:
        loads(text)
    assert caught.value.line == line
    assert f"line {line}:" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_error_messages_do_not_echo_line_text_which_may_hold_secrets() -> None:
    for text in ("AuthorizationHeader= Bearer x.s3cr3t\n", "a: 1\nBearer s3cr3t\n", "a: 1\n  s3cr3t: x\n"):
        with pytest.raises(FDSError) as caught:
            loads(text)
        assert "s3cr3t" not in str(caught.value)


def test_nesting_depth_is_limited() -> None:
    assert loads("".join(" " * level + "k:\n" for level in range(50)))
    with pytest.raises(FDSError, match="nested deeper"):
        loads("".join(" " * level + "k:\n" for level in range(200)))


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (2**63, ValueError),
        (-(2**63) - 1, ValueError),
        ({"plain": "dict"}, TypeError),
        (None, TypeError),
        ([["nested"]], TypeError),
        ([Section()], TypeError),
    ],
)
def test_dumps_refuses_what_fds_cannot_hold(value: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        dumps(Section({"k": value}))  # type: ignore[dict-item]  # deliberately wrong types


def test_section_is_an_ordered_mutable_mapping_with_comments() -> None:
    section = Section()
    section.set("b", 1, comments=["about b"])
    section["a"] = 2
    assert list(section) == ["b", "a"] and len(section) == 2
    section["b"] = 3
    assert section.comments("b") == ["about b"]
    section.set("b", 4, comments=[])
    assert section.comments("b") == []
    section.set("b", 5, comments=["again"])
    del section["b"]
    section["b"] = 6
    assert section.comments("b") == [] and list(section) == ["a", "b"]
    with pytest.raises(KeyError):
        section.comments("missing")


def test_section_equality_ignores_comments_and_order() -> None:
    commented = Section()
    commented.set("y", [1, "two"], comments=["c"])
    commented.set("x", Section({"n": 1}))
    commented.trailing_comments = ["end"]
    assert commented == Section({"x": Section({"n": 1}), "y": [1, "two"]})
    assert commented != Section({"x": Section({"n": 2}), "y": [1, "two"]})


def test_comments_are_stored_as_they_will_read_back() -> None:
    section = Section()
    section.set("k", 1, comments=["tab\there  ", " leading kept"])
    assert section.comments("k") == ["tab    here", " leading kept"]
    with pytest.raises(ValueError, match="single line"):
        section.set("k", 1, comments=["two\nlines"])
    with pytest.raises(TypeError):
        section.set("k", 1, comments="one string")
    with pytest.raises(TypeError):
        section.set(1, 1)  # type: ignore[arg-type]


def test_empty_section_dumps_to_empty_text() -> None:
    assert dumps(Section()) == ""
    assert loads("") == Section()
    assert loads("\n#only a comment\n").trailing_comments == ["only a comment"]
