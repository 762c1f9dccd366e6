"""swarmkeeper: a backend manager for image generation that speaks SwarmUI's BackendAPI."""

__version__ = "0.1.0"
