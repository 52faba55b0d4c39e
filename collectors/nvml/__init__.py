"""NVML GPU telemetry: the sampler (``sampler.NvmlSampler``), PID -> container/pod mapping
(``cgroups``) and the factory the sidecar calls (``factory.create_components``)."""
