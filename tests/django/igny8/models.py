"""The shape of igny8's accounts, users and integration settings."""
from django.db import models


class Account(models.Model):
    STATUS_CHOICES = [
        ("active", "Active"),
        ("trial", "Trial"),
        ("suspended", "Suspended"),
        ("cancelled", "Cancelled"),
    ]

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=255)
    status = models.CharField(max_length=20, choices=STATUS_CHOICES, default="active")

    def __str__(self):
        return self.slug


class User(models.Model):
    """A plain model standing in for igny8's custom user (no contrib.auth)."""

    ROLE_CHOICES = [
        ("developer", "Developer"),
        ("owner", "Owner"),
        ("admin", "Admin"),
        ("editor", "Editor"),
        ("viewer", "Viewer"),
        ("system_bot", "System bot"),
    ]

    email = models.EmailField(unique=True)
    role = models.CharField(max_length=20, choices=ROLE_CHOICES)
    is_superuser = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="users")

    def __str__(self):
        return self.email


class IntegrationSettings(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="integration_settings")
    integration_type = models.CharField(max_length=50)
    config = models.JSONField(default=dict)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "igny8_integration_settings"
        unique_together = [("account", "integration_type")]

    def __str__(self):
        return f"{self.account_id}:{self.integration_type}"
