"""The shell of fleetledger: the CLI, the typed settings, and the wiring of every part.

This is the only package that imports collectors, pipelines, dashboards and the simulator
together; the demo is assembled here.
"""

__version__ = "0.1.0"
