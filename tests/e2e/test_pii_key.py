"""The masking key comes from HMC_PII_KEY, read once per process: checked in a fresh interpreter (hence
here and not in tests/unit/test_privacy.py)."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
from pathlib import Path


def test_key_comes_from_hmc_pii_key() -> None:
    # A fresh interpreter, since the key is read once per process.
    env = {**os.environ, "HMC_PII_KEY": "synthetic-test-key"}
    root = Path(__file__).resolve().parents[2]
    code = "from broker.privacy import mask_identifier; print(mask_identifier('19121212-1212'))"
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True)
    digest = hmac.new(b"synthetic-test-key", b"1212121212", hashlib.sha256).hexdigest()
    assert result.stdout.strip() == f"[patient-id:{digest[:8]}]"
