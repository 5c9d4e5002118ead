from django.db import migrations, models
import django.utils.timezone


class Migration(migrations.Migration):
    dependencies = [("vault", "0004_rename_is_active_enabled")]

    operations = [
        migrations.AddField(
            model_name="credential",
            name="updated_at",
            field=models.DateTimeField(auto_now=True, default=django.utils.timezone.now),
            preserve_default=False,
        ),
    ]
