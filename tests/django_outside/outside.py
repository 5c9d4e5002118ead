"""The outside app: a Django project keyfall's own code never shaped,
driven from tests/it/outside_app.rs as the app's own role would run it.

    python tests/django_outside/outside.py migrate [TARGET]   (TARGET: a migration name, or zero)
    python tests/django_outside/outside.py seed                (with the models as migrated so far)
    python tests/django_outside/outside.py writes --account SLUG
        (create, save, queryset update and delete of one credential, with the models as migrated)

The database comes from the PG* variables; `VAULT_FLAVOUR=prod` deploys it
with other table names. Every command prints one JSON object.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vaultsite.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.migrations.executor import MigrationExecutor  # noqa: E402


def state_now():
    """The project state of what is applied: the app's models as they are."""
    loader = MigrationExecutor(connection).loader
    leaves = loader.graph.leaf_nodes("vault")
    plan = loader.graph.forwards_plan(leaves[0])
    applied = [n for n in plan if n in loader.applied_migrations]
    if not applied:
        raise SystemExit("nothing of vault is migrated")
    return applied[-1], loader.project_state(applied[-1])


def models_now():
    node, state = state_now()
    account = "workspace" if ("vault", "workspace") in state.models else "org"
    return node, state.apps.get_model("vault", account), state.apps.get_model("vault", "member"), \
        state.apps.get_model("vault", "credential")


def cmd_migrate(args):
    if args.target:
        call_command("migrate", "vault", args.target, verbosity=0, interactive=False)
    else:
        call_command("migrate", "vault", verbosity=0, interactive=False)
    if args.target == "zero":
        return {"ok": True, "at": None}
    return {"ok": True, "at": state_now()[0][1]}


def cmd_seed(args):
    node, Account, Member, Credential = models_now()
    accounts = {s: Account.objects.create(slug=s, name=s.title(), status="active")
                for s in ["aws-admin", "default", "tenant-1", "tenant-2", "tenant-3"]}
    Member.objects.create(email="dev@vault.test", role="developer", is_superuser=True, org=accounts["aws-admin"])
    Member.objects.create(email="owner@tenant-1.test", role="owner", org=accounts["tenant-1"])
    Member.objects.create(email="viewer@tenant-2.test", role="viewer", org=accounts["tenant-2"])
    Credential.objects.create(account=accounts["aws-admin"], integration_type="openai",
                              config={"apiKey": "sk-vault-system-0123456789abcdef", "model": "gpt-4o-mini"})
    Credential.objects.create(account=accounts["tenant-1"], integration_type="openai",
                              config={"apiKey": "sk-vault-tenant-0123456789abcdef", "model": "gpt-4o"})
    Credential.objects.create(account=accounts["aws-admin"], integration_type="image_generation",
                              config={"provider": "openai", "model": "dall-e-3"})
    return {"ok": True, "at": node[1]}


def cmd_writes(args):
    node, Account, Member, Credential = models_now()
    account = Account.objects.get(slug=args.account)
    secret = "sk-outside-written-0123456789abcdef"
    obj = Credential.objects.create(account=account, integration_type="outside_probe",
                                    config={"apiKey": secret, "model": "gpt-4o"})
    obj.config = {"apiKey": secret, "model": "gpt-4.1"}
    obj.save()
    Credential.objects.filter(pk=obj.pk).update(config={"apiKey": secret, "model": "o3"})
    obj.delete()
    return {"ok": True, "at": node[1], "writes": 4}


def main(argv):
    parser = argparse.ArgumentParser(prog="outside.py")
    sub = parser.add_subparsers(dest="command", required=True)
    migrate = sub.add_parser("migrate")
    migrate.add_argument("target", nargs="?")
    sub.add_parser("seed")
    writes = sub.add_parser("writes")
    writes.add_argument("--account", required=True)
    args = parser.parse_args(argv)
    result = {"migrate": cmd_migrate, "seed": cmd_seed, "writes": cmd_writes}[args.command](args)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
