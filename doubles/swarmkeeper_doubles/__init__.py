"""Test doubles for swarmkeeper's tests and benchmarks (development only, not in the wheel).

- ``fake_comfyui``: a ComfyUI that answers as the recorded real traffic in ``data/`` does.
- ``fake_comfyui_script``: a stand-in for ComfyUI's ``main.py`` for self-start tests.
- ``swarm_double``: a server that answers as SwarmUI does, for compatibility tests.
"""
