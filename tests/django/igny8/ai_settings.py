"""Which account's integration settings an AI function runs with.

The shape of igny8's backend/igny8_core/ai/settings.py: the account's own
settings first, then the system accounts in order. keyfall's resolver must
give the same answers as this code, quirks included.
"""
import os
from dataclasses import dataclass
from typing import Optional

from igny8.models import Account, IntegrationSettings

SYSTEM_ACCOUNTS = ["aws-admin", "default-account", "default"]

FUNCTION_TYPES = {
    "auto_cluster": "openai",
    "generate_ideas": "openai",
    "generate_content": "openai",
    "generate_image_prompts": "openai",
    "generate_images": "image_generation",
}

PROVIDER_TYPES = {"openai", "runware"}
CONSUMER_TYPES = {"image_generation"}

# keyfall's tests add a provider to keyfall's registry (a debug build run
# with KEYFALL_TEST_PROVIDER=1, tests/it/registry_data.rs); the app under
# test knows it too then.
if os.environ.get("KEYFALL_TEST_PROVIDER") == "1":
    PROVIDER_TYPES.add("acme_ai")


@dataclass
class ModelConfig:
    account_slug: Optional[str]
    integration_type: str
    config: object
    provider: Optional["ModelConfig"] = None


def _usable(setting):
    if setting is None or not setting.is_active:
        return False
    config = setting.config
    if not isinstance(config, dict):
        return False
    if setting.integration_type in PROVIDER_TYPES:
        api_key = config.get("apiKey")
        # A truthy non-string key raises AttributeError: the app's real behaviour.
        return bool(api_key and api_key.strip())
    if setting.integration_type in CONSUMER_TYPES:
        return bool(config.get("provider"))
    return True


def _walk(integration_type, account):
    candidates = [account] if account is not None else []
    candidates += [Account.objects.filter(slug=s).first() for s in SYSTEM_ACCOUNTS]
    for acct in candidates:  # the account itself first, whatever it is, then the chain
        if acct is None:
            continue
        setting = IntegrationSettings.objects.filter(account=acct, integration_type=integration_type).first()
        if _usable(setting):
            return setting
    return None


def _result(setting):
    return ModelConfig(setting.account.slug, setting.integration_type, setting.config)


def get_model_config(function_name, account):
    integration_type = FUNCTION_TYPES.get(function_name)
    if integration_type is None:
        return None
    setting = _walk(integration_type, account)
    if setting is None:
        return None
    result = _result(setting)
    if integration_type in CONSUMER_TYPES:
        # Second hop: the provider the consumer names, walked from the same account.
        provider = _walk(str(setting.config["provider"]), account)
        if provider is not None:
            result.provider = _result(provider)
    return result
