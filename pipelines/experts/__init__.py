"""Expert-routing analysis: per-layer balance, hot experts, drift and imbalance tax (``analysis``),
the DeepSeek EPLB replica plan in numpy (``eplb``), and the flow step writing ``expert_hotness``
(``step.run_expert_hotness``)."""
