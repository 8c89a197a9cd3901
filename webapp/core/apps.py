from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _roles(sender: AppConfig, **kwargs: object) -> None:
    from webapp.core.roles import roles_setup

    roles_setup()


class CoreConfig(AppConfig):
    name = "webapp.core"
    label = "core"
    verbose_name = "arbbot"

    def ready(self) -> None:
        # the roles exist wherever the tables do (every migrate creates or repairs them)
        post_migrate.connect(_roles, sender=self)
