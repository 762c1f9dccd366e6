"""The Backends web page: static assets served by swarmkeeper itself, and a push stream of
backend changes. The page talks to the server only through the public API routes."""
