"""The sidecar: GPU samplers, trace receivers, scrapers -> records -> durable spool -> shipper.

Collectors never import ``pipelines`` or ``dashboards``; they share only ``schemas`` with them.
"""
