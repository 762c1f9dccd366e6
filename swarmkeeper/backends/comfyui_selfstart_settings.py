"""The settings of the ``comfyui_selfstart`` type, exactly as SwarmUI declares them (reference
§8.3): names, types, defaults, dropdown values and names, and the config comments that
ListBackendTypes shows and Backends.fds carries as comment lines."""

from __future__ import annotations

from dataclasses import dataclass

from swarmkeeper.backends.settings import boolean, dropdown, integer, text

UPDATE_OPTIONS = (("true", "Always Update"), ("aggressive", "Always Aggressively Update (Force-Update)"),
                  ("false", "Don't Update"))
FRONTEND_OPTIONS = (("Latest", "Latest"), ("None", "None"), ("LatestSwarmValidated", "Latest Swarm Validated"),
                    ("Legacy", "Legacy (Pre Sept 2024)"))
PREVIEW_OPTIONS = (("false", "Disabled"), ("true", "Enabled (fast latent2rgb)"), ("taesd", "Enabled HD (slow TAESD)"))
UPDATE_HELP = ("\nYou can update every launch, never update automatically, or force-update (bypasses some common "
               "git issues).")


@dataclass(frozen=True)
class ComfyUISelfStartSettings:
    StartScript: str = text(
        "", "The location of the 'main.py' file. Can be an absolute or relative path, but must end with 'main.py'.\n"
            "If you used the installer, this should be 'dlbackend/comfy/ComfyUI/main.py'.")
    ExtraArgs: str = text("", "Any arguments to include in the launch script.")
    DisableInternalArgs: bool = boolean(
        False, "If unchecked, the system will automatically add some relevant arguments to the comfy launch. If "
               "checked, automatic args (other than port) won't be added.")
    AutoUpdate: str = dropdown(
        "false", "Whether the Comfy backend should automatically update itself during launch." + UPDATE_HELP,
        UPDATE_OPTIONS)
    UpdateManagedNodes: str = dropdown(
        "false", "Whether the Comfy backend should automatically update nodes within Swarm's managed nodes folder."
                 + UPDATE_HELP, UPDATE_OPTIONS)
    FrontendVersion: str = dropdown(
        "LatestSwarmValidated", "Which version of the ComfyUI frontend to enable.\n"
        "'Latest' uses the latest version available (including dev commits).\n"
        "'None' uses whatever is baked into ComfyUI itself.\n"
        "'Latest Swarm Validated' uses the latest version that Swarm has been tested and confirmed to work with.\n"
        "'Legacy' uses the pre-September-2024 legacy UI.", FRONTEND_OPTIONS)
    EnablePreviews: str = dropdown(
        "true", "If checked, tells Comfy to generate image previews. If unchecked, previews will not be generated, "
                "and images won't show up until they're done.", PREVIEW_OPTIONS)
    GPU_ID: str = text(
        "0", "Which GPU to use, if multiple are available.\nShould be a single number, like '0'.\n"
             "You can use syntax like '0,1' to provide multiple GPUs to one backend (only applicable if you have "
             "custom nodes that can take advantage of this.)")
    OverQueue: int = integer(1, "How many extra requests may queue up on this backend while one is processing.")
    AutoRestart: bool = boolean(
        True, "If checked, if the backend crashes it will automatically restart.\n"
              "If false, if the backend crashes it will sit in an errored state until manually restarted.")
