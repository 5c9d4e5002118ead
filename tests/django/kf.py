"""The igny8 test app, driven from keyfall's Rust tests.

    python tests/django/kf.py migrate
    python tests/django/kf.py seed --seed N [--tenants T] [--users U]
    python tests/django/kf.py answers
    python tests/django/kf.py get --user EMAIL --function F
    python tests/django/kf.py race < pairs.csv      (the benches: the seed's way, timed)
    python tests/django/kf.py write --account SLUG --type T --how save|update|bulk_update|delete|create
                                    [--config JSON] [--active true|false]
    python tests/django/kf.py evolve OP --account SLUG    (one schema migration, then ORM writes with its models;
                                                           `drop_unique`: the model without unique_together)
    python tests/django/kf.py zero-and-back --account SLUG (migrate igny8 zero, migrate, seed one account, write)
    python tests/django/kf.py serve      (ORM writes to keyfall's demo tables: one JSON op per stdin line,
                                          one JSON answer per stdout line; see cmd_serve)

The database comes from the PG* variables. Every command prints JSON on
stdout (`answers`: one object per line).
"""
import argparse
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "igny8test.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import migrations, models, transaction  # noqa: E402

from igny8.ai_settings import FUNCTION_TYPES, get_model_config  # noqa: E402
from igny8.models import Account, IntegrationSettings, User  # noqa: E402

# JSON null in a JSONField: plain None would be SQL NULL.
JSON_NULL = models.Value(None, output_field=models.JSONField())

STATUSES = ["active", "active", "active", "trial", "suspended", "cancelled"]
ROLES = ["developer", "owner", "admin", "editor", "viewer", "system_bot"]

MISSING = object()  # "leave the field out"


def key_menu(rng, prefix, clean):
    """An apiKey as the database may really hold it."""
    good = prefix + "".join(rng.choice("abcdefghijkLMNOPQRSTuvwxyz0123456789") for _ in range(rng.randint(8, 40)))
    if clean or rng.random() < 0.55:
        return good
    return rng.choice([
        " " + good, good + "\n", "\t" + good + " ", '"' + good + '"',
        "", "   ", "\u00a0", "\u2003\u2003", "\u3000", "\x85", "\x1f", "\u2028",
        "\u200b", "\ufeff", "\u200b" + good,
        None, MISSING, MISSING,
        0, False, [], {}, 0.0,  # falsy: no key
        123, True, ["a"], {"k": "v"}, 1.5,  # truthy: .strip() raises in the app
        123, True, ["a"], {"k": "v"}, 1.5,
    ])


# A provider keyfall's tests add to its registry and to the app's
# (KEYFALL_TEST_PROVIDER=1): seeded, and named by consumers.
EXTRA_TYPES = ["acme_ai"] if os.environ.get("KEYFALL_TEST_PROVIDER") == "1" else []
PROVIDERS = ["openai", "runware"] + EXTRA_TYPES


def provider_menu(rng, clean):
    if clean or rng.random() < 0.6:
        return rng.choice(PROVIDERS)
    return rng.choice(["", None, MISSING, "dalle", "stability", "  ", 5, " openai", "Runware"])


def messy_config(rng, integration_type, clean=False):
    """A config for the type, often wrong in one of the ways real data is
    (its key and provider always right when `clean`)."""
    if not clean and rng.random() < 0.06:
        return rng.choice([[], ["sk-in-a-list"], "sk-a-string", 42, 0, 3.25, None, True, {}])
    config = {}
    if integration_type == "openai":
        config["apiKey"] = key_menu(rng, "sk-", clean)
        config["model"] = rng.choice(["gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-5-ultra", 5, ""])
        if rng.random() < 0.5:
            config["temperature"] = rng.choice([0.7, 0, 2, 2.5, -1, "hot", None])
        if rng.random() < 0.5:
            config["max_tokens"] = rng.choice([4096, 1, 0, -5, "12", 1.5, None])
    elif integration_type == "runware":
        config["apiKey"] = key_menu(rng, "rw-", clean)
        config["model"] = rng.choice(["runware:100@1", "runware:101@1", 5])
    elif integration_type == "image_generation":
        config["provider"] = provider_menu(rng, clean)
        config["model"] = rng.choice(["dall-e-3", "runware:100@1", MISSING])
        config["image_size"] = rng.choice(["1024x1024", "512x512", MISSING])
        if rng.random() < 0.15:
            config["apiKey"] = key_menu(rng, "sk-", False)  # the seed's wrong config
    else:
        config["apiKey"] = key_menu(rng, "st-", clean)
    if rng.random() < 0.1:
        config["extra"] = rng.choice([{"nested": [1, "two", None]}, "kept as is", 7])
    return {k: v for k, v in config.items() if v is not MISSING}


def cmd_migrate(args):
    call_command("migrate", verbosity=0, interactive=False)
    return {"ok": True}


@transaction.atomic
def cmd_seed(args):
    rng = random.Random(args.seed)
    slugs = ["aws-admin", "default"] + (["default-account"] if rng.random() < 0.5 else [])
    system = [Account(slug=s, name=s.replace("-", " ").title(), status="active") for s in slugs]
    tenants = [
        Account(slug=f"tenant-{i}", name=f"Tenant {i}", status=rng.choice(STATUSES))
        for i in range(1, args.tenants + 1)
    ]
    accounts = Account.objects.bulk_create(system + tenants)

    users = []
    for i in range(args.users):
        roll = rng.random()
        account = None if roll < 0.1 else rng.choice(system) if roll < 0.2 else rng.choice(accounts)
        domain = account.slug if account else "nowhere"
        email = f"user{i}@{domain}.test"
        users.append(User(
            email=email.capitalize() if rng.random() < 0.1 else email,
            role=rng.choice(ROLES),
            is_superuser=rng.random() < 0.1,
            is_active=rng.random() < 0.9,
            account=account,
        ))
    User.objects.bulk_create(users)

    settings = []
    for account in accounts:
        chance = 0.6 if account in system else 0.35
        for integration_type in ["openai", "runware", "image_generation"] + EXTRA_TYPES:
            if rng.random() < chance:
                settings.append((account, integration_type))
        if rng.random() < 0.05:
            settings.append((account, "stability"))
    rows, nulls = [], []
    for account, integration_type in settings:
        # System accounts are looked after a little better than tenants.
        config = messy_config(rng, integration_type, clean=account in system and rng.random() < 0.3)
        row = IntegrationSettings(
            account=account,
            integration_type=integration_type,
            config={} if config is None else config,
            is_active=rng.random() < 0.85,
        )
        rows.append(row)
        if config is None:
            nulls.append(row)
    IntegrationSettings.objects.bulk_create(rows)
    IntegrationSettings.objects.filter(pk__in=[r.pk for r in nulls]).update(config=JSON_NULL)
    return {"accounts": len(accounts), "users": len(users), "settings": len(rows)}


def answer(email, function_name, account):
    out = {"user": email, "function": function_name, "answered_by": None, "provider_answered_by": None, "error": None}
    try:
        result = get_model_config(function_name, account)
    except Exception as e:  # the app's own exceptions are part of the answer
        out["error"] = f"{type(e).__name__}: {e}"
        return out
    if result is not None:
        out["answered_by"] = result.account_slug
        if result.provider is not None:
            out["provider_answered_by"] = result.provider.account_slug
    return out


def cmd_answers(args):
    # get_model_config depends on the account only: ask once per account.
    cache = {}
    for user in User.objects.select_related("account").order_by("id"):
        for function_name in FUNCTION_TYPES:
            key = (user.account_id, function_name)
            if key not in cache:
                cache[key] = answer(None, function_name, user.account)
            print(json.dumps({**cache[key], "user": user.email}))
    return None


def cmd_race(args):
    # The seed's way, as a request handler does it: the user (with its
    # account) by email, then get_model_config — per pair, timed. Then the
    # seed's whole report (every account × function), timed on the first
    # 1,000 accounts and scaled to all of them.
    import time
    pairs = [line.strip().split(",", 1) for line in sys.stdin if "," in line]
    times = []
    for email, function_name in pairs:
        started = time.perf_counter()
        try:
            user = User.objects.select_related("account").get(email=email)
            get_model_config(function_name, user.account)
        except Exception:  # the app's own errors are answers too
            pass
        times.append(time.perf_counter() - started)
    times.sort()
    accounts = list(Account.objects.order_by("id")[:1000])
    started = time.perf_counter()
    for account in accounts:
        for function_name in FUNCTION_TYPES:
            try:
                get_model_config(function_name, account)
            except Exception:
                pass
    per_account = (time.perf_counter() - started) / max(len(accounts), 1)
    total_accounts = Account.objects.count()
    return {
        "pairs": len(times),
        "median_ms": round(times[len(times) // 2] * 1000, 3),
        "p99_ms": round(times[int(len(times) * 0.99)] * 1000, 3),
        "all_pairs_s": round(sum(times), 2),
        "report_accounts": total_accounts,
        "report_s_scaled_from_1000_accounts": round(per_account * total_accounts, 1),
    }


def cmd_get(args):
    user = User.objects.select_related("account").get(email=args.user)
    out = answer(user.email, args.function, user.account)
    if out["answered_by"] is not None:
        # What the AI function would be handed: the answering config (and
        # the provider's, for a consumer). Test data only: keys are fake.
        result = get_model_config(args.function, user.account)
        out["config"] = result.config
        out["provider_config"] = result.provider.config if result.provider is not None else None
    return out


def cmd_write(args):
    fields = {}
    if args.config is not None:
        config = json.loads(args.config)
        fields["config"] = JSON_NULL if config is None else config
    if args.active is not None:
        fields["is_active"] = args.active == "true"
    lookup = {"account__slug": args.account, "integration_type": args.type}
    if args.how == "create":
        fields.setdefault("config", {})
        IntegrationSettings.objects.create(account=Account.objects.get(slug=args.account), integration_type=args.type, **fields)
    elif args.how == "update":
        # Like Django's own QuerySet.update: one UPDATE, no save(), updated_at untouched.
        IntegrationSettings.objects.filter(**lookup).update(**fields)
    else:
        obj = IntegrationSettings.objects.get(**lookup)
        if args.how == "delete":
            obj.delete()
        else:
            for name, value in fields.items():
                setattr(obj, name, value)
            if args.how == "save":
                obj.save()
            else:
                IntegrationSettings.objects.bulk_update([obj], list(fields) or ["config"])
    return {"ok": True}


def evolution(op):
    """One schema operation, as an app's next migration would hold it."""
    from django.db.models import Index, UniqueConstraint
    return {
        "add_field": lambda: migrations.AddField("integrationsettings", "note", models.CharField(max_length=100, null=True)),
        "alter_field_length_index": lambda: migrations.AlterField(
            "integrationsettings", "integration_type", models.CharField(max_length=100, db_index=True)),
        "alter_field_type": lambda: migrations.AlterField(
            "account", "slug", models.TextField(unique=True)),
        "alter_field_null": lambda: migrations.AlterField(
            "integrationsettings", "config", models.JSONField(default=dict, null=True)),
        "rename_field": lambda: migrations.RenameField("integrationsettings", "is_active", "enabled"),
        "remove_field": lambda: migrations.RemoveField("integrationsettings", "is_active"),
        "alter_model_table": lambda: migrations.AlterModelTable("integrationsettings", "ref_integrationsettings"),
        "rename_model": lambda: migrations.RenameModel("Account", "Tenant"),
        "add_index": lambda: migrations.AddIndex(
            "integrationsettings", Index(fields=["integration_type", "is_active"], name="kf_type_active_idx")),
        "add_constraint": lambda: migrations.AddConstraint(
            "integrationsettings", UniqueConstraint(fields=["account", "integration_type", "is_active"], name="kf_uniq3")),
        # The model without unique_together: several rows per account and
        # type, which get_model_config's .first() reads by lowest id.
        "drop_unique": lambda: migrations.AlterUniqueTogether("integrationsettings", set()),
    }[op]()


def orm_writes(state, slug):
    """What the app does right after its deploy: create, save, update and
    delete a setting through the ORM, with the models as migrated."""
    Settings = state.apps.get_model("igny8", "IntegrationSettings")
    account_model = "Tenant" if ("igny8", "tenant") in state.models else "Account"
    Account_ = state.apps.get_model("igny8", account_model)
    account = Account_.objects.get(slug=slug)
    obj = Settings.objects.create(account=account, integration_type="evolved",
                                  config={"apiKey": "sk-evolved-0123456789abcdef", "model": "gpt-4o"})
    obj.config = {"apiKey": "sk-evolved-0123456789abcdef", "model": "gpt-4.1"}
    obj.save()
    Settings.objects.filter(pk=obj.pk).update(config={"apiKey": "sk-evolved-0123456789abcdef", "model": "o3"})
    obj.delete()
    return 4


def cmd_evolve(args):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    executor = MigrationExecutor(connection)
    state = executor.loader.project_state(("igny8", "0001_initial"))
    migration = type("Migration", (migrations.Migration,), {"operations": [evolution(args.op)]})("9999_evolve", "igny8")
    with connection.schema_editor(atomic=True) as editor:
        state = migration.apply(state, editor)
    return {"ok": True, "writes": orm_writes(state, args.account)}


def cmd_zero_and_back(args):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    call_command("migrate", "igny8", "zero", verbosity=0)
    call_command("migrate", "igny8", verbosity=0)
    Account.objects.create(slug=args.account, name=args.account)
    state = MigrationExecutor(connection).loader.project_state(("igny8", "0001_initial"))
    return {"ok": True, "writes": orm_writes(state, args.account)}


def demo_write(op):
    """One ORM write to keyfall's demo tables (`igny8.demo_tables`), as the
    app would make it; `how` picks the ORM's way."""
    from igny8.demo_tables import DemoAccount, DemoSetting, DemoUser
    how = op["how"]
    kind = op["op"]
    if kind == "setting":
        config = json.loads(op["config"])
        fields = {"config": JSON_NULL if config is None else config, "is_active": op["active"]}
        lookup = {"account_id": op["account_id"], "integration_type": op["type"]}
        if how == "update_or_create":
            DemoSetting.objects.update_or_create(defaults=fields, **lookup)
        elif how == "update":
            # QuerySet.update: one UPDATE, no save(); a missing row is created.
            if DemoSetting.objects.filter(**lookup).update(**fields) == 0:
                DemoSetting.objects.create(**lookup, **fields)
        else:
            obj = DemoSetting.objects.filter(**lookup).first()
            if obj is None:
                DemoSetting.objects.create(**lookup, **fields)
            else:
                for name, value in fields.items():
                    setattr(obj, name, value)
                if how == "save":
                    obj.save()
                else:
                    DemoSetting.objects.bulk_update([obj], list(fields))
    elif kind == "delete":
        lookup = {"account_id": op["account_id"], "integration_type": op["type"]}
        if how == "queryset":
            DemoSetting.objects.filter(**lookup).delete()
        else:
            obj = DemoSetting.objects.filter(**lookup).first()
            if obj is not None:
                obj.delete()
    elif kind == "user":
        fields = {"account_id": op["account_id"], "role": op["role"], "is_active": op["active"],
                  "is_superuser": op["superuser"]}
        if how == "update":
            DemoUser.objects.filter(email=op["email"]).update(**fields)
        else:
            with transaction.atomic():
                for user in DemoUser.objects.select_for_update().filter(email=op["email"]):
                    for name, value in fields.items():
                        setattr(user, name, value)
                    user.save(update_fields=list(fields) if how == "save_fields" else None)
    elif kind == "account":
        fields = {k: op[k] for k in ("status", "slug") if k in op}
        if how == "update":
            DemoAccount.objects.filter(pk=op["account_id"]).update(**fields)
        else:
            account = DemoAccount.objects.get(pk=op["account_id"])
            for name, value in fields.items():
                setattr(account, name, value)
            account.save(update_fields=list(fields) if how == "save_fields" else None)
    else:
        raise ValueError(f"unknown op {kind!r}")


def cmd_serve(args):
    """A long-lived ORM writer: one JSON op per line on stdin, answered by
    one JSON line on stdout ({"ok": true} once the write is committed, or
    {"error": "..."}), until stdin ends. Django runs in autocommit: every
    write is committed before its answer."""
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            demo_write(json.loads(line))
            answer = {"ok": True}
        except Exception as e:  # the test shows it
            answer = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(answer), flush=True)
    return None


def main(argv):
    parser = argparse.ArgumentParser(prog="kf.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate")
    seed = sub.add_parser("seed")
    seed.add_argument("--seed", type=int, required=True)
    seed.add_argument("--tenants", type=int, default=30)
    seed.add_argument("--users", type=int, default=200)
    sub.add_parser("answers")
    sub.add_parser("race")
    get = sub.add_parser("get")
    get.add_argument("--user", required=True)
    get.add_argument("--function", required=True)
    write = sub.add_parser("write")
    write.add_argument("--account", required=True)
    write.add_argument("--type", required=True)
    write.add_argument("--how", required=True, choices=["save", "update", "bulk_update", "delete", "create"])
    write.add_argument("--config", help="JSON")
    write.add_argument("--active", choices=["true", "false"])
    evolve = sub.add_parser("evolve")
    evolve.add_argument("op")
    evolve.add_argument("--account", required=True)
    zero = sub.add_parser("zero-and-back")
    zero.add_argument("--account", required=True)
    sub.add_parser("serve")
    args = parser.parse_args(argv)

    command = {"migrate": cmd_migrate, "seed": cmd_seed, "answers": cmd_answers, "race": cmd_race, "get": cmd_get,
               "write": cmd_write, "evolve": cmd_evolve, "zero-and-back": cmd_zero_and_back, "serve": cmd_serve}
    result = command[args.command](args)
    if result is not None:
        print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
