"""Celery fleet: the app, the queue topology, beat schedule and thin tasks."""
