"""SwarmUI's Server tab (its AdminAPI): routes that combine accounts, dispatch and the machine's
resources, so they sit above the features, beside the wiring."""
