from django.db import migrations


def create_transactional(apps, schema_editor):
    Topic = apps.get_model("consent", "Topic")
    Topic.objects.get_or_create(
        key="transactional",
        defaults={
            "name": "Transactional messages",
            "description": "Receipts, password resets and confirmations: sent without "
            "opt-in, never to suppressed or erased customers.",
            "channels": ["email", "sms", "push"],
            "default": "opt_out",
            "double_opt_in": False,
            "is_transactional": True,
        },
    )


class Migration(migrations.Migration):
    dependencies = [("consent", "0001_initial")]

    operations = [migrations.RunPython(create_transactional, migrations.RunPython.noop)]
