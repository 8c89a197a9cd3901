"""Django project: settings, the core app (models, services, selectors, admin, API) and the dashboard."""
