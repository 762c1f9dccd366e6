"""``python -m swarmkeeper_doubles.fake_comfyui``: the fake as a process (cli.py)."""

from swarmkeeper_doubles.fake_comfyui.cli import main

main()
