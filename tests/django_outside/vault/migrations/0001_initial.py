from django.db import migrations, models
import django.db.models.deletion

from vault import names


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Org",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("slug", models.SlugField(unique=True)),
                ("name", models.CharField(max_length=200)),
                ("status", models.CharField(default="active", max_length=20)),
            ],
        ),
        migrations.CreateModel(
            name="Member",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("email", models.EmailField(max_length=254, unique=True)),
                ("role", models.CharField(max_length=20)),
                ("is_superuser", models.BooleanField(default=False)),
                ("is_active", models.BooleanField(default=True)),
                ("org", models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL,
                                          related_name="members", to="vault.org")),
            ],
            options={"db_table": names.MEMBERS},
        ),
        migrations.CreateModel(
            name="Credential",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("integration_type", models.CharField(max_length=40)),
                ("config", models.JSONField(default=dict)),
                ("is_active", models.BooleanField(default=True)),
                ("account", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                              related_name="credentials", to="vault.org")),
            ],
            options={"db_table": names.CREDENTIALS},
        ),
    ]
