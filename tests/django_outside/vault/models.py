"""The outside app's models as its last migration leaves them: a workspace
(once `Org`), its people, and its AI credentials (no unique pair at
first, `is_active` renamed `enabled`, `updated_at` added later)."""
from django.db import models

from vault import names


class Workspace(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, default="active")


class Member(models.Model):
    email = models.EmailField(unique=True)
    role = models.CharField(max_length=20)
    is_superuser = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    org = models.ForeignKey(Workspace, null=True, on_delete=models.SET_NULL, related_name="members")

    class Meta:
        db_table = names.MEMBERS


class Credential(models.Model):
    id = models.BigAutoField(primary_key=True)
    account = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="credentials")
    integration_type = models.CharField(max_length=100, db_index=True)
    config = models.JSONField(default=dict)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(Member, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = names.CREDENTIALS
        unique_together = [("account", "integration_type")]
