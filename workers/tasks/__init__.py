"""Thin tasks, one module per queue: decode plain values, call arbbot and a webapp
service, hand the result on. Routing is by module name (workers.queues.route_for_task)."""
