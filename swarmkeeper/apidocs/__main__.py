"""``python -m swarmkeeper.apidocs [--check] [--out docs/api]``: write the Markdown API pages of every
route the server declares (app.FEATURES included), or with ``--check`` only say whether the
pages on disk are up to date (exit 1 if not)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from swarmkeeper.apidocs.markdown import GENERATED_NOTE, render_pages

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "docs" / "api"


def expected_pages() -> dict[str, str]:
    from swarmkeeper.app import FEATURES, api_routes

    return render_pages(api_routes(FEATURES))


def generated_files(out: Path) -> dict[str, str]:
    """The generated pages on disk (hand-written files, without the note, are not ours)."""
    found = {}
    for path in sorted(out.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        if text.startswith(GENERATED_NOTE):
            found[path.name] = text
    return found


def differences(out: Path) -> list[str]:
    """What is out of date, one line each (empty when the pages match the routes)."""
    expected, actual = expected_pages(), generated_files(out)
    problems = [f"missing: {name}" for name in expected if name not in actual]
    problems += [f"out of date: {name}" for name in expected if name in actual and actual[name] != expected[name]]
    problems += [f"no longer generated: {name}" for name in actual if name not in expected]
    return problems


def write(out: Path) -> list[str]:
    """Write every page, remove generated pages no route needs; returns the files changed."""
    out.mkdir(parents=True, exist_ok=True)
    expected, actual = expected_pages(), generated_files(out)
    changed = []
    for name, text in expected.items():
        if actual.get(name) != text:
            (out / name).write_text(text, encoding="utf-8")
            changed.append(name)
    for name in actual.keys() - expected.keys():
        (out / name).unlink()
        changed.append(name)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swarmkeeper.apidocs", description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Folder of the pages (default docs/api).")
    parser.add_argument("--check", action="store_true", help="Only check; exit 1 if the pages are out of date.")
    args = parser.parse_args(argv)
    if args.check:
        problems = differences(args.out)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("Run scripts/gen-api-docs to regenerate them.", file=sys.stderr)
        return 1 if problems else 0
    changed = write(args.out)
    print(f"{len(changed)} file(s) changed in {args.out}" + (f": {', '.join(changed)}" if changed else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
