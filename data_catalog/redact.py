"""Keep credentials out of what is written: store attributes, run records, logs.

Driver options may carry cloud credentials (``storage_options={"token": ...}``, ``key``/``secret``
for S3, passwords in URLs). ``redact`` returns a copy of nested settings with every such value
replaced, so provenance can record *which* options were used without recording the secrets.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "<redacted>"
_SECRET_KEY = re.compile(
    r"token|secret|passw|credential|api[_-]?key|private[_-]?key|^key$|^auth$|authori[sz]ation|cookie", re.IGNORECASE
)
_URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<password>[^@/\s]+)@", re.IGNORECASE
)
PUBLIC_VALUES = ("anon", "anonymous", None, False, True)  # gcsfs token="anon" etc.: not a secret


def redact(value: Any) -> Any:
    """A copy of ``value`` (dicts, lists, strings) with credentials replaced by ``REDACTED``."""
    if isinstance(value, dict):
        return {k: (REDACTED if _is_secret(k, v) else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    if isinstance(value, str):
        return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", value)
    return value


def _is_secret(key: Any, value: Any) -> bool:
    if not isinstance(key, str) or not _SECRET_KEY.search(key):
        return False
    return not (value in PUBLIC_VALUES or isinstance(value, (dict, list, tuple)))
