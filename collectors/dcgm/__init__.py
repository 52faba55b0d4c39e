"""DCGM exporter scraper: ``dcgm-exporter`` /metrics -> gpu_samples, gpu_processes, gpu_events
(``mapping`` is the pure text -> rows part, ``scraper`` the component, ``factory`` the wiring)."""
