"""The ComfyUI-compatible pool in front of every backend (see core.py)."""
