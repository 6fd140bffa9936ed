from django.apps import AppConfig


class FtpsConfig(AppConfig):
    name = "ftps"
    verbose_name = "FTPS server"
