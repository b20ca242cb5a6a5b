"""The cryptographic parts: derived keys, client secrets, opaque tokens and user passwords."""

from __future__ import annotations

import hashlib
import re

import pytest
from argon2 import PasswordHasher, Type
from hypothesis import given
from hypothesis import strategies as st

from authserver.config import Argon2Params
from authserver.models import SecretDigest
from authserver.security.client_secrets import (
    SECRET_PREFIX,
    SecretHasher,
    generate_client_secret,
)
from authserver.security.keys import Keyring
from authserver.security.passwords import Passwords, Verified, is_argon2_hash
from authserver.security.tokens import TokenCodec, TokenKind, token_digest

OLD_KEY = "old-server-key-0123456789abcdefghijklmnop"
NEW_KEY = "new-server-key-0123456789abcdefghijklmnop"
OTHER_KEY = "other-server-key-0123456789abcdefghijklm"

CHEAP = Argon2Params(time_cost=1, memory_cost=8, parallelism=1)
TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

OLD_ONLY = Keyring([OLD_KEY])
ROTATED = Keyring([NEW_KEY, OLD_KEY])  # a new key added in front of the old one
NEW_ONLY = Keyring([NEW_KEY])  # the old key removed

_SECRETS = st.text(max_size=80)


# keys


def test_keyring_needs_a_key() -> None:
    """A keyring without any server key is refused."""
    with pytest.raises(ValueError, match="server key"):
        Keyring([])


def test_purposes_get_separate_keys() -> None:
    """Two purposes derive different keys from the same server key."""
    tokens = ROTATED.derive("token-mac")
    secrets = ROTATED.derive("client-secret")
    assert {key.secret for key in tokens}.isdisjoint(key.secret for key in secrets)


def test_derived_keys_newest_first() -> None:
    """Derived keys come in the order of the server keys: newest first."""
    rotated = ROTATED.derive("token-mac")
    assert rotated[0] == NEW_ONLY.derive("token-mac")[0]
    assert rotated[1] == OLD_ONLY.derive("token-mac")[0]


def test_key_ids_are_stable() -> None:
    """A server key's id is the same across keyrings, positions and purposes."""
    old_id = OLD_ONLY.derive("token-mac")[0].key_id
    assert ROTATED.derive("token-mac")[1].key_id == old_id
    assert ROTATED.derive("client-secret")[1].key_id == old_id
    assert Keyring([OLD_KEY]).derive("cookie")[0].key_id == old_id


def test_key_ids_differ_per_key() -> None:
    """Different server keys have different ids."""
    new, old = ROTATED.derive("token-mac")
    assert new.key_id != old.key_id


def test_key_id_does_not_reveal_key() -> None:
    """A key id is a short digest, not part of the server key itself."""
    key_id = OLD_ONLY.derive("token-mac")[0].key_id
    assert re.fullmatch(r"[0-9a-f]{16}", key_id)
    assert key_id not in OLD_KEY


# client secrets


def test_generated_secret_shape() -> None:
    """A generated secret is the prefix and at least 256 bits of base64url randomness."""
    secret = generate_client_secret()
    assert secret.startswith(SECRET_PREFIX)
    body = secret.removeprefix(SECRET_PREFIX)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", body)
    assert len(body) * 6 >= 256


def test_generated_secrets_unique() -> None:
    """Generated secrets never repeat."""
    assert len({generate_client_secret() for _ in range(1000)}) == 1000


@given(secret=_SECRETS)
def test_secret_digest_verifies(secret: str) -> None:
    """A secret verifies against its own digest."""
    hasher = SecretHasher(ROTATED)
    assert hasher.verify(secret, [hasher.digest(secret)])


@given(secret=_SECRETS, other=_SECRETS)
def test_other_secret_does_not_verify(secret: str, other: str) -> None:
    """Any other secret does not verify against a digest."""
    if other == secret:
        return
    hasher = SecretHasher(ROTATED)
    assert not hasher.verify(other, [hasher.digest(secret)])


@given(secret=_SECRETS)
def test_secret_digest_is_keyed(secret: str) -> None:
    """The stored digest is a 32-byte MAC under the server key: another key makes another one."""
    digest = SecretHasher(NEW_ONLY).digest(secret)
    other = SecretHasher(Keyring([OTHER_KEY])).digest(secret)
    assert len(digest.digest) == 32
    assert digest.digest != hashlib.sha256(secret.encode()).digest()
    assert other.digest != digest.digest
    # Even filed under this server's key id, the other key's digest does not verify.
    assert not SecretHasher(NEW_ONLY).verify(secret, [SecretDigest(digest.key_id, other.digest)])


def test_digest_uses_newest_key() -> None:
    """A new digest is made under the newest server key."""
    digest = SecretHasher(ROTATED).digest("s")
    assert digest.key_id == NEW_ONLY.derive("client-secret")[0].key_id


@given(secret=_SECRETS)
def test_old_digest_verifies_after_rotation(secret: str) -> None:
    """A digest made under the old key verifies while that key is still configured."""
    stored = SecretHasher(OLD_ONLY).digest(secret)
    assert SecretHasher(ROTATED).verify(secret, [stored])


@given(secret=_SECRETS)
def test_digest_of_removed_key_fails(secret: str) -> None:
    """A digest made under a key that has been removed no longer verifies."""
    stored = SecretHasher(OLD_ONLY).digest(secret)
    assert not SecretHasher(NEW_ONLY).verify(secret, [stored])


def test_verify_any_of_several_digests() -> None:
    """During a rotation window either stored digest accepts its secret."""
    hasher = SecretHasher(ROTATED)
    stored = [hasher.digest("current"), hasher.digest("previous")]
    assert hasher.verify("current", stored)
    assert hasher.verify("previous", stored)
    assert not hasher.verify("neither", stored)


def test_verify_nothing_stored_fails() -> None:
    """With no stored digest, nothing verifies."""
    assert not SecretHasher(ROTATED).verify("", [])


def test_digest_under_wrong_key_id_fails() -> None:
    """A digest relabelled with another configured key's id does not verify."""
    hasher = SecretHasher(ROTATED)
    genuine = hasher.digest("s")
    old_id = ROTATED.derive("client-secret")[1].key_id
    assert not hasher.verify("s", [SecretDigest(old_id, genuine.digest)])


# tokens


_KINDS = st.sampled_from(list(TokenKind))


@given(kind=_KINDS)
def test_token_round_trip(kind: TokenKind) -> None:
    """A minted token is recognised as its own kind."""
    codec = TokenCodec(ROTATED)
    token = codec.mint(kind)
    assert token.startswith(kind.value + "_")
    assert codec.kind_of(token) is kind


def test_tokens_are_unique() -> None:
    """Minted tokens never repeat."""
    codec = TokenCodec(ROTATED)
    assert len({codec.mint(TokenKind.ACCESS) for _ in range(1000)}) == 1000


@given(kind=_KINDS, data=st.data())
def test_single_character_change_rejected(kind: TokenKind, data: st.DataObject) -> None:
    """Changing any one character of a token makes it invalid."""
    codec = TokenCodec(ROTATED)
    token = codec.mint(kind)
    at = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(
        st.one_of(st.sampled_from(TOKEN_ALPHABET), st.characters()).filter(lambda c: c != token[at])
    )
    assert codec.kind_of(token[:at] + replacement + token[at + 1 :]) is None


@given(kind=_KINDS, data=st.data())
def test_wrong_length_rejected(kind: TokenKind, data: st.DataObject) -> None:
    """A token with characters cut off or added is invalid."""
    codec = TokenCodec(ROTATED)
    token = codec.mint(kind)
    cut = data.draw(st.integers(min_value=1, max_value=len(token)))
    extra = data.draw(st.text(TOKEN_ALPHABET, min_size=1, max_size=8))
    assert codec.kind_of(token[:-cut]) is None
    assert codec.kind_of(token + extra) is None
    assert codec.kind_of(extra + token) is None


@given(kind=_KINDS)
def test_token_of_other_server_rejected(kind: TokenKind) -> None:
    """A well-formed token minted under an unknown server key is invalid."""
    foreign = TokenCodec(Keyring([OTHER_KEY])).mint(kind)
    assert TokenCodec(ROTATED).kind_of(foreign) is None


@given(kind=_KINDS)
def test_old_token_verifies_after_rotation(kind: TokenKind) -> None:
    """A token minted under the old key verifies while that key is still listed."""
    token = TokenCodec(OLD_ONLY).mint(kind)
    assert TokenCodec(ROTATED).kind_of(token) is kind


@given(kind=_KINDS)
def test_old_token_fails_once_key_removed(kind: TokenKind) -> None:
    """A token minted under a key that has been removed is invalid."""
    token = TokenCodec(OLD_ONLY).mint(kind)
    assert TokenCodec(NEW_ONLY).kind_of(token) is None


def test_new_tokens_use_newest_key() -> None:
    """After rotation, new tokens verify under the new key alone."""
    token = TokenCodec(ROTATED).mint(TokenKind.ACCESS)
    assert TokenCodec(NEW_ONLY).kind_of(token) is TokenKind.ACCESS
    assert TokenCodec(OLD_ONLY).kind_of(token) is None


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("phrat_", id="prefix-only"),
        pytest.param("phrxx_" + "A" * 59, id="unknown-prefix"),
        pytest.param("phrat_" + "A" * 59, id="forged-mac"),
        pytest.param("Bearer phrat_" + "A" * 59, id="with-scheme"),
        pytest.param("a" * 32, id="legacy-shape"),
    ],
)
def test_malformed_tokens_rejected(token: str) -> None:
    """Strings that are not minted tokens are invalid."""
    assert TokenCodec(ROTATED).kind_of(token) is None


@given(token=st.text(max_size=80))
def test_token_digest_is_sha256(token: str) -> None:
    """A token's stored digest is the 32-byte SHA-256 of the token string."""
    digest = token_digest(token)
    assert len(digest) == 32
    assert digest == hashlib.sha256(token.encode()).digest()


# passwords


@pytest.fixture
def passwords() -> Passwords:
    """A password hasher with the cheapest parameters."""
    return Passwords(CHEAP)


async def test_password_hash_is_argon2id(passwords: Passwords) -> None:
    """A password is hashed with argon2id and the configured parameters."""
    stored = await passwords.hash("correct horse")
    assert stored.startswith("$argon2id$")
    assert "m=8,t=1,p=1" in stored
    assert "correct horse" not in stored


async def test_password_right_verifies(passwords: Passwords) -> None:
    """The right password verifies, with no rehash needed."""
    stored = await passwords.hash("correct horse")
    result = await passwords.verify(stored, "correct horse")
    assert result.ok
    assert result.new_hash is None


async def test_password_wrong_fails(passwords: Passwords) -> None:
    """A wrong password does not verify."""
    stored = await passwords.hash("correct horse")
    result = await passwords.verify(stored, "battery staple")
    assert not result.ok
    assert result.new_hash is None


async def test_password_no_stored_hash_fails(passwords: Passwords) -> None:
    """With no stored hash (unknown user), nothing verifies, not even the dummy's password."""
    assert not (await passwords.verify(None, "")).ok
    assert not (await passwords.verify(None, "authserver dummy password")).ok


async def test_password_rehash_when_params_change(passwords: Passwords) -> None:
    """A hash made with other parameters verifies and comes back with a replacement."""
    older = Passwords(Argon2Params(time_cost=2, memory_cost=16, parallelism=1))
    stored = await older.hash("correct horse")
    result = await passwords.verify(stored, "correct horse")
    assert result.ok
    assert result.new_hash is not None
    assert "m=8,t=1,p=1" in result.new_hash
    assert (await passwords.verify(result.new_hash, "correct horse")) == Verified(ok=True)


async def test_password_imported_argon2i_is_upgraded(passwords: Passwords) -> None:
    """An imported argon2i hash verifies and is replaced by an argon2id one."""
    stored = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.I).hash("pw")
    result = await passwords.verify(stored, "pw")
    assert result.ok
    assert result.new_hash is not None
    assert result.new_hash.startswith("$argon2id$")


async def test_password_wrong_does_not_rehash(passwords: Passwords) -> None:
    """A wrong password against an outdated hash fails without a replacement."""
    older = Passwords(Argon2Params(time_cost=2, memory_cost=16, parallelism=1))
    result = await passwords.verify(await older.hash("correct horse"), "wrong")
    assert not result.ok
    assert result.new_hash is None


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param("", id="empty"),
        pytest.param("plaintext", id="plain"),
        pytest.param("$argon2id$", id="prefix-only"),
        pytest.param("$argon2id$v=19$m=8,t=1,p=1$$", id="empty-salt-and-hash"),
        pytest.param("$argon2id$v=19$m=abc,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", id="bad-param"),
        pytest.param("$argon2id$v=19$m=8,t=1,p=1$!!!$!!!", id="bad-base64"),
        pytest.param("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", id="bcrypt"),
    ],
)
async def test_password_malformed_hash_fails(passwords: Passwords, stored: str) -> None:
    """A malformed stored hash gives ok=False, not an exception."""
    result = await passwords.verify(stored, "pw")
    assert not result.ok
    assert result.new_hash is None


def test_is_argon2_hash_accepts_argon2_types() -> None:
    """Hashes of argon2id, argon2i and argon2d are recognised."""
    for kind in (Type.ID, Type.I, Type.D):
        stored = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=kind).hash("pw")
        assert is_argon2_hash(stored)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("$argon2id$", id="prefix-only"),
        pytest.param("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", id="bcrypt"),
        pytest.param("5f4dcc3b5aa765d61d8327deb882cf99", id="md5"),
        pytest.param("$argon2id$v=19$m=abc,t=1,p=1$c2FsdA$aGFzaA", id="bad-param"),
    ],
)
def test_is_argon2_hash_refuses_others(value: str) -> None:
    """Other hash formats and malformed strings are not argon2 hashes."""
    assert not is_argon2_hash(value)


@given(value=st.text(max_size=120))
def test_is_argon2_hash_never_raises(value: str) -> None:
    """is_argon2_hash answers a boolean for any text."""
    assert is_argon2_hash("$argon2id$" + value) in (True, False)
    assert is_argon2_hash(value) in (True, False)
