"""The API reference, generated from the route table (the one declaration of every route):

- openapi.py: an OpenAPI 3.1 document, served at ``GET /openapi.json`` (feature.py);
- markdown.py: Markdown pages in the style of SwarmUI's ``docs/APIRoutes/``, one per module that
  declares routes, written to ``docs/api/`` by ``python -m swarmkeeper.apidocs``
  (``scripts/gen-api-docs``); a test fails when the committed pages are out of date.
"""
