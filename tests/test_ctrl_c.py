"""The suite's children hear Ctrl-C even when the suite itself was started ignoring it (a background
job of a script): see tests/ctrl_c.py."""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.servers import ROOT

CHILD = ("import signal; handler = signal.getsignal(signal.SIGINT); "
         "print('ignored' if handler == signal.SIG_IGN else getattr(handler, '__name__', handler))")


def child_of_a_process_started_ignoring_ctrl_c(setup: str) -> str:
    """What SIGINT is to a grandchild, when its parent ran ``setup`` and was started ignoring SIGINT
    (as a shell without job control starts ``cmd &``)."""
    parent = f"{setup}\nimport subprocess, sys\nprint(subprocess.run([sys.executable, '-c', {CHILD!r}], " \
             "capture_output=True, text=True, check=True).stdout, end='')"
    return subprocess.run([sys.executable, "-c", parent], cwd=ROOT, capture_output=True, text=True, check=True,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)).stdout.strip()


def test_an_ignored_ctrl_c_is_inherited_without_the_suites_set_up() -> None:
    assert child_of_a_process_started_ignoring_ctrl_c("") == "ignored"


def test_the_suites_set_up_gives_its_children_ctrl_c_back() -> None:
    assert child_of_a_process_started_ignoring_ctrl_c("import tests.conftest") == "default_int_handler"
