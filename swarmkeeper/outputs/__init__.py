"""Generated images saved on disk as SwarmUI saves them (``<data_dir>/Output/<user>/raw/...``) and
served back at SwarmUI's ``GET /View/<user>/<path>``."""

from swarmkeeper.outputs.paths import BadPath, check_user_id, output_path, view_url
from swarmkeeper.outputs.store import OutputStore

__all__ = ["BadPath", "OutputStore", "check_user_id", "output_path", "view_url"]
