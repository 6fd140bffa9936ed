from django.apps import AppConfig


class FilesConfig(AppConfig):
    name = "files"
    verbose_name = "Home folders and transfers"

    def ready(self):
        from django.conf import settings
        from django.db import transaction
        from django.db.models.signals import post_delete

        from . import flows

        def remove_home_folder(sender, instance, **kwargs):
            # Once the deletion is committed: a deletion rolled back keeps its files.
            transaction.on_commit(lambda: flows.remove_home_folder(instance.username))

        post_delete.connect(remove_home_folder, sender=settings.AUTH_USER_MODEL, weak=False)
