"""A ``Backends.fds`` as SwarmUI writes it, with one ``comfyui_selfstart`` and one ``comfyui_api``
entry (SwarmUI's own config comments as comment lines), loads with the right values and saves back
byte for byte."""

from __future__ import annotations

from pathlib import Path

from tests.comfy_backends import comfy_server

SWARMUI_FILE = """\
0:
\ttype: comfyui_selfstart
\ttitle: My GPU 1
\tenabled: false
\tsettings:
\t\t#The location of the 'main.py' file. Can be an absolute or relative path, but must end with 'main.py'.
\t\t#If you used the installer, this should be 'dlbackend/comfy/ComfyUI/main.py'.
\t\tStartScript: dlbackend/comfy/ComfyUI/main.py
\t\t#Any arguments to include in the launch script.
\t\tExtraArgs: --cpu --preview-size 512
\t\t#If unchecked, the system will automatically add some relevant arguments to the comfy launch. \
If checked, automatic args (other than port) won't be added.
\t\tDisableInternalArgs: false
\t\t#Whether the Comfy backend should automatically update itself during launch.
\t\t#You can update every launch, never update automatically, or force-update (bypasses some common git issues).
\t\tAutoUpdate: aggressive
\t\t#Whether the Comfy backend should automatically update nodes within Swarm's managed nodes folder.
\t\t#You can update every launch, never update automatically, or force-update (bypasses some common git issues).
\t\tUpdateManagedNodes: false
\t\t#Which version of the ComfyUI frontend to enable.
\t\t#'Latest' uses the latest version available (including dev commits).
\t\t#'None' uses whatever is baked into ComfyUI itself.
\t\t#'Latest Swarm Validated' uses the latest version that Swarm has been tested and confirmed to work with.
\t\t#'Legacy' uses the pre-September-2024 legacy UI.
\t\tFrontendVersion: Legacy
\t\t#If checked, tells Comfy to generate image previews. If unchecked, previews will not be generated, \
and images won't show up until they're done.
\t\tEnablePreviews: taesd
\t\t#Which GPU to use, if multiple are available.
\t\t#Should be a single number, like '0'.
\t\t#You can use syntax like '0,1' to provide multiple GPUs to one backend (only applicable if you have \
custom nodes that can take advantage of this.)
\t\tGPU_ID: 0,1
\t\t#How many extra requests may queue up on this backend while one is processing.
\t\tOverQueue: 0
\t\t#If checked, if the backend crashes it will automatically restart.
\t\t#If false, if the backend crashes it will sit in an errored state until manually restarted.
\t\tAutoRestart: false
1:
\ttype: comfyui_api
\ttitle: \\x
\tenabled: false
\tsettings:
\t\t#The address of the ComfyUI instance, eg 'http://localhost:8188'.
\t\tAddress: http://192.0.2.10:8188
\t\t#Whether the backend is allowed to revert to an 'idle' state if the API address is unresponsive.
\t\t#An idle state is not considered an error, but cannot generate.
\t\t#It will automatically return to 'running' if the API becomes available.
\t\tAllowIdle: true
\t\t#How many extra requests may queue up on this backend while one is processing.
\t\tOverQueue: 3
\t\t#If true, the backend address will use '/api/' for API calls to enable passthrough of a frontend NPM dev \
server.
\t\tEnableFrontendDev: false
"""


def write_backends(data_dir: Path, text: str) -> Path:
    data_dir.mkdir(parents=True)
    path = data_dir / "Backends.fds"
    path.write_text(text)
    return path


def read(path: Path) -> str:
    return path.read_text()


async def test_a_swarmui_backends_file_loads_and_saves_back_byte_for_byte(data_dir: Path) -> None:
    path = write_backends(data_dir, SWARMUI_FILE)
    async with comfy_server(data_dir) as api:
        listing = await api.ok("ListBackends")
        assert listing["0"]["settings"] == {
            "StartScript": "dlbackend/comfy/ComfyUI/main.py", "ExtraArgs": "--cpu --preview-size 512",
            "DisableInternalArgs": False, "AutoUpdate": "aggressive", "UpdateManagedNodes": "false",
            "FrontendVersion": "Legacy", "EnablePreviews": "taesd", "GPU_ID": "0,1", "OverQueue": 0,
            "AutoRestart": False}
        assert listing["1"]["settings"] == {"Address": "http://192.0.2.10:8188", "AllowIdle": True, "OverQueue": 3,
                                            "EnableFrontendDev": False}
        assert (listing["0"]["title"], listing["1"]["title"]) == ("My GPU 1", "")
        assert [listing[key]["status"] for key in "01"] == ["disabled", "disabled"]
        assert api.services is not None
        await api.services.manager.persist()
    assert read(path) == SWARMUI_FILE


async def test_an_older_swarmui_file_with_a_boolean_enable_previews_still_loads(data_dir: Path) -> None:
    older = SWARMUI_FILE.replace("EnablePreviews: taesd", "EnablePreviews: true").replace("GPU_ID: 0,1", "GPU_ID: 2")
    write_backends(data_dir, older)
    async with comfy_server(data_dir) as api:
        settings = (await api.ok("ListBackends"))["0"]["settings"]
    assert (settings["EnablePreviews"], settings["GPU_ID"]) == ("true", "2")
