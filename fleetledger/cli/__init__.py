"""The `fleetledger` command: one typer app, one module per command group."""
