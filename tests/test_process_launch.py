"""What a self-started ComfyUI is launched with: start script checks (SwarmUI's rules plus shell
metacharacters), the interpreter (the venv next to main.py, else ours; bash for .sh), the
environment (GPU variables, no Python leftovers), and ComfyUI's arguments from the settings."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import pytest

from swarmkeeper.backends.comfyui_launch import SWARM_VALIDATED_FRONTEND, comfy_args, extra_args
from swarmkeeper.backends.comfyui_selfstart_settings import ComfyUISelfStartSettings
from swarmkeeper.process.launch import (
    LaunchError,
    LaunchSpec,
    check_start_script,
    child_environment,
    clean_script_text,
    interpreter_argv,
    script_spec,
)


@pytest.fixture
def comfy(tmp_path: Path) -> Path:
    folder = tmp_path / "ComfyUI"
    folder.mkdir()
    (folder / "main.py").write_text("print('hi')\n")
    return folder / "main.py"


def make_venv(folder: Path) -> Path:
    python = folder / "venv" / "bin" / "python3"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    return python


# --- the start script ---


def test_a_good_script_is_found_and_made_absolute(comfy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_start_script(f'  "{comfy}"\n') == comfy
    monkeypatch.chdir(comfy.parent.parent)
    assert check_start_script("ComfyUI/main.py") == comfy
    assert check_start_script("ComfyUI\\main.py") == comfy  # a Windows-style separator


@pytest.mark.parametrize(("raw", "message"), [
    ("ComfyUI/main.txt", "is not a .py or .sh file"),
    ("ComfyUI/run.bat", "is not a .py or .sh file"),
    ("ComfyUI", "is not a .py or .sh file"),
    ("ComfyUI/main.py; rm -rf ~", "holds characters a start script path may not have ( ; ~ )"),
    ("$(reboot)/main.py", "( $ )"),
    ("`id`/main.py", "( ` )"),
    ("a|b/main.py", "( | )"),
    ("a\nb/main.py", "( \\n )"),
    ("missing/main.py", "does not exist"),
])
def test_bad_scripts_are_refused_with_the_reason(raw: str, message: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LaunchError) as refused:
        check_start_script(raw)
    assert message in str(refused.value) and str(refused.value).startswith("StartScript '")


def test_a_path_the_system_cannot_take_is_refused_with_the_reason() -> None:
    with pytest.raises(LaunchError, match="cannot be used: File name too long") as refused:
        check_start_script("x" * 5000 + "/main.py")
    assert len(str(refused.value)) < 400


def test_a_folder_named_like_a_script_is_not_a_script(tmp_path: Path) -> None:
    (tmp_path / "main.py").mkdir()
    with pytest.raises(LaunchError, match="does not exist"):
        check_start_script(str(tmp_path / "main.py"))


def test_clean_script_text_trims_quotes_and_space() -> None:
    assert clean_script_text(" 'C:\\Comfy\\main.py'\r\n") == "C:/Comfy/main.py"
    assert clean_script_text(' "" ') == ""


# --- interpreter and environment ---


def test_a_py_script_runs_with_the_venv_next_to_it(comfy: Path) -> None:
    python = make_venv(comfy.parent)
    assert interpreter_argv(comfy) == [str(python), "-s", "main.py"]


def test_without_a_venv_a_py_script_runs_with_our_python(comfy: Path) -> None:
    assert interpreter_argv(comfy) == [sys.executable, "-s", "main.py"]


def test_a_sh_script_runs_with_bash(tmp_path: Path) -> None:
    script = tmp_path / "start.sh"
    script.write_text("exit 0\n")
    argv = interpreter_argv(script)
    assert Path(argv[0]).name == "bash" and argv[1:] == [str(script)]


def test_environment_gets_the_gpu_and_loses_python_settings(comfy: Path) -> None:
    python = make_venv(comfy.parent)
    base = {"PATH": "/usr/bin", "PYTHONPATH": "/ours", "VIRTUAL_ENV": "/our/venv", "HOME": "/root"}
    env = child_environment(comfy, "0,1", base)
    assert env["CUDA_VISIBLE_DEVICES"] == env["ROCR_VISIBLE_DEVICES"] == env["HIP_VISIBLE_DEVICES"] == "0,1"
    assert "PYTHONPATH" not in env and "VIRTUAL_ENV" not in env and env["HOME"] == "/root"
    assert env["PATH"] == f"{python.parent}{os.pathsep}/usr/bin"


def test_script_spec_runs_in_the_script_folder(comfy: Path) -> None:
    spec = script_spec(comfy, ["--port", "7821"], gpu_id="2", name="ComfyUI-4", where="http://127.0.0.1:7821",
                       base_env={})
    assert spec.argv == (sys.executable, "-s", "main.py", "--port", "7821")
    assert spec.cwd == comfy.parent and spec.env["CUDA_VISIBLE_DEVICES"] == "2" and spec.name == "ComfyUI-4"


def test_a_nul_character_anywhere_is_refused() -> None:
    with pytest.raises(LaunchError, match="NUL"):
        LaunchSpec(argv=("python", "a\x00b"), cwd=Path("/"), name="ComfyUI-1")
    with pytest.raises(LaunchError, match="NUL"):
        LaunchSpec(argv=("python",), cwd=Path("/"), env={"CUDA_VISIBLE_DEVICES": "0\x00"}, name="ComfyUI-1")


# --- ComfyUI's arguments ---


def settings(**values: object) -> ComfyUISelfStartSettings:
    return dataclasses.replace(ComfyUISelfStartSettings(), **values)  # type: ignore[arg-type]


def test_default_arguments(tmp_path: Path) -> None:
    assert comfy_args(settings(), 7821, tmp_path) == [
        "--port", "7821", "--temp-directory", str(tmp_path), "--preview-method", "latent2rgb",
        "--front-end-version", f"Comfy-Org/ComfyUI_frontend@v{SWARM_VALIDATED_FRONTEND}"]


def test_extra_args_come_first_and_are_split_like_a_shell(tmp_path: Path) -> None:
    args = comfy_args(settings(ExtraArgs='--cpu --output-directory "/my outputs" --x={PORT}',
                               DisableInternalArgs=True), 7830, tmp_path)
    assert args == ["--cpu", "--output-directory", "/my outputs", "--x=7830", "--port", "7830"]


@pytest.mark.parametrize(("previews", "frontend", "expected"), [
    ("false", "None", []),
    ("taesd", "Latest", ["--preview-method", "taesd", "--front-end-version", "Comfy-Org/ComfyUI_frontend@latest"]),
    ("true", "Legacy", ["--preview-method", "latent2rgb", "--front-end-version",
                        "Comfy-Org/ComfyUI_legacy_frontend@latest"]),
    ("True", "SomethingNew", ["--preview-method", "latent2rgb"]),  # an old file's boolean; an unknown version
])
def test_previews_and_frontend_map_to_comfyui_flags(previews: str, frontend: str, expected: list[str],
                                                    tmp_path: Path) -> None:
    args = comfy_args(settings(EnablePreviews=previews, FrontendVersion=frontend), 7821, tmp_path)
    assert args == ["--port", "7821", "--temp-directory", str(tmp_path), *expected]


def test_unbalanced_quotes_in_extra_args_are_a_clear_error() -> None:
    with pytest.raises(LaunchError, match="ExtraArgs setting could not be read"):
        extra_args('--cpu "--oops', 7821)
