"""Fixed TEST keys for the sandbox exchange. NEVER use these anywhere real: the private keys are public.

`TEST_PRIVATE_KEY` (``0x`` + ``11`` * 32) is the account tests and integration runs trade with;
`OTHER_PRIVATE_KEY` (``0x`` + ``22`` * 32) is a second account (wrong-signer tests, a second user).
The sandbox's API credentials are deterministic per (address, nonce, server secret), so
`creds_for()` gives the same creds that `POST /auth/api-key` / `GET /auth/derive-api-key` return.
(No function here starts with ``test``, so importing them into a test module adds no tests.)
"""

from __future__ import annotations

from functools import lru_cache

from eth_account import Account

from .auth import DEFAULT_SERVER_SECRET, ApiCreds, derive_creds

TEST_PRIVATE_KEY = "0x" + "11" * 32
OTHER_PRIVATE_KEY = "0x" + "22" * 32
CHAIN_ID = 137


@lru_cache(maxsize=16)
def address_of(private_key: str) -> str:
    """Checksummed address of a private key."""
    return str(Account.from_key(private_key).address)


def creds_for(
    private_key: str = TEST_PRIVATE_KEY, nonce: int = 0, secret: bytes = DEFAULT_SERVER_SECRET
) -> ApiCreds:
    """The API creds a sandbox (started with the default server secret) hands out for this key and nonce."""
    return derive_creds(address_of(private_key), nonce, secret)


TEST_ADDRESS = address_of(TEST_PRIVATE_KEY)  # 0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A
OTHER_ADDRESS = address_of(OTHER_PRIVATE_KEY)
