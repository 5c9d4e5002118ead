"""keyfall's demo tables (assets/demo_schema.sql: `accounts`, `users`,
`integration_settings` in `public`) as unmanaged Django models, for the ORM
writers of the history property test (`kf.py serve`). Imported by that
command only: the app's migrations never see them, and Django never
creates, alters or drops these tables.
"""
from django.db import models
from django.utils import timezone


class DemoAccount(models.Model):
    slug = models.TextField(unique=True)
    name = models.TextField()
    status = models.TextField(default="active")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "igny8"
        managed = False
        db_table = "accounts"


class DemoUser(models.Model):
    email = models.TextField()
    role = models.TextField()
    is_superuser = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    account = models.ForeignKey(DemoAccount, null=True, on_delete=models.SET_NULL, db_constraint=False,
                                related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "igny8"
        managed = False
        db_table = "users"


class DemoSetting(models.Model):
    account = models.ForeignKey(DemoAccount, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    integration_type = models.TextField()
    config = models.JSONField(default=dict)
    is_active = models.BooleanField(default=True)
    # The demo's own trigger (demo_settings_stamp) sets these on every write.
    version = models.BigIntegerField(default=1)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.TextField(null=True)

    class Meta:
        app_label = "igny8"
        managed = False
        db_table = "integration_settings"
        unique_together = [("account", "integration_type")]
