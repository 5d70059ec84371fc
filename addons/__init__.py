"""mitmproxy addons: thin adapters over the mitmproxy-free core in `proxy`."""
