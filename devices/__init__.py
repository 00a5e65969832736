"""Device drivers (plain Python, no Prefect/HTTP/events): OLT, BNG, RADIUS; inventory; lab."""
