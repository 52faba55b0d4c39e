"""A simulated LLM fleet with ground truth, driven only through the interfaces a real fleet uses.

It never imports ``pipelines``: its ground truth comes from its own step-by-step batch records.
"""
