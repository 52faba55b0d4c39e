"""OTLP trace receivers (HTTP and gRPC) that turn serving-engine spans into ``request_spans``
and ``trace_labels`` rows. See ``config.py`` for the settings and their defaults."""
