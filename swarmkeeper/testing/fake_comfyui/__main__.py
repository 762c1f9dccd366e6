"""``python -m swarmkeeper.testing.fake_comfyui``: the fake as a process (cli.py)."""

from swarmkeeper.testing.fake_comfyui.cli import main

main()
