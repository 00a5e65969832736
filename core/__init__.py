"""fiberflow's core: settings, database (models, migrations, IPAM) and the CLI."""
