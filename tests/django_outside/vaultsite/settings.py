"""Settings of the outside app: integer ids (AutoField, Django's default
before 3.2); the database comes from the libpq variables."""
import os

SECRET_KEY = "keyfall-outside-app-not-secret"
DEBUG = False
ALLOWED_HOSTS = []
INSTALLED_APPS = ["vault"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
TIME_ZONE = "UTC"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("PGDATABASE", ""),
        "USER": os.environ.get("PGUSER", ""),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        "HOST": os.environ.get("PGHOST", ""),
        "PORT": os.environ.get("PGPORT", ""),
    }
}
