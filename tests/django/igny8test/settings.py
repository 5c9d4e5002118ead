"""Settings of the test app: the database comes from the libpq variables."""
import os

SECRET_KEY = "keyfall-test-app-not-secret"
DEBUG = False
ALLOWED_HOSTS = []
INSTALLED_APPS = ["igny8"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("PGDATABASE", ""),
        "USER": os.environ.get("PGUSER", ""),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        "HOST": os.environ.get("PGHOST", ""),  # a unix socket directory works too
        "PORT": os.environ.get("PGPORT", ""),
    }
}
