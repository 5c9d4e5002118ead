"""The table names of one deployment: `VAULT_FLAVOUR=prod` is the same app
deployed with its own table names (as a DBA's naming rule would have it)."""
import os

PREFIX = "prd" if os.environ.get("VAULT_FLAVOUR") == "prod" else "vault"
CREDENTIALS = f"{PREFIX}_ai_credentials"
MEMBERS = f"{PREFIX}_people"
