"""Expert-routing collection: SGLang expert-distribution dumps, vLLM EPLB log lines, pushed loads.

``dumps`` parses ``stat`` / ``per_pass`` dumps (JSON, ``.pt`` with the torch extra), ``watcher``
follows a dump folder, ``eplb_log`` tails a vLLM log, ``push`` answers ``POST /v1/expert-loads``,
``factory.create_components`` builds the components from the sidecar config. Rows go to the
``expert_loads`` and ``expert_balance_samples`` contract tables through a ``Consumer``.
"""
