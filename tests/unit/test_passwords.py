"""Password hashing (Argon2id) and password rules."""

from __future__ import annotations

import pytest

from app.domain import passwords
from app.domain.passwords import (
    MIN_LENGTH,
    check_password_rules,
    generate_password,
    hash_password,
    needs_rehash,
    verify_password,
)


def test_hash_is_argon2id_and_salted():
    first = hash_password("correct horse battery")
    second = hash_password("correct horse battery")
    assert first.startswith("$argon2id$")
    assert second.startswith("$argon2id$")
    assert first != second  # a fresh salt each time
    assert "correct horse battery" not in first


def test_verify_right_and_wrong():
    h = hash_password("correct horse battery")
    assert verify_password(h, "correct horse battery") is True
    assert verify_password(h, "correct horse batterY") is False
    assert verify_password(h, "") is False


def test_verify_without_a_hash_is_false_even_for_the_dummy_password():
    assert verify_password(None, "anything at all") is False
    assert verify_password("", "anything at all") is False


def test_verify_against_garbage_hash_is_false_not_an_error():
    assert verify_password("not-a-hash", "whatever-password") is False
    assert verify_password("$argon2id$v=19$m=65536,t=3,p=4$broken", "whatever-password") is False


def test_fresh_hash_needs_no_rehash():
    assert needs_rehash(hash_password("correct horse battery")) is False


def test_weaker_parameters_need_rehash():
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("correct horse battery")
    assert needs_rehash(weak) is True
    assert verify_password(weak, "correct horse battery") is True


@pytest.mark.parametrize("password", ["", "short", "x" * (MIN_LENGTH - 1)])
def test_too_short_refused(password):
    with pytest.raises(ValueError, match=f"at least {MIN_LENGTH} characters"):
        check_password_rules(password)


def test_too_long_refused():
    with pytest.raises(ValueError, match="at most 256 characters"):
        check_password_rules("x" * 257)


@pytest.mark.parametrize("password", ["kq7-vz2m-plw9"[:MIN_LENGTH], "kq7vz2-" * 36 + "abcd", "correct horse battery"])
def test_acceptable_lengths(password):
    assert MIN_LENGTH <= len(password) <= 256
    check_password_rules(password)


def test_min_length_is_at_least_twelve():
    assert passwords.MIN_LENGTH >= 12


@pytest.mark.parametrize("password", ["123qweasdzxc", "QWERTY123456", "leavemealone"])
def test_common_passwords_from_the_shipped_breach_list_refused(password):
    assert password.lower() in passwords.COMMON_PASSWORDS  # the list zxcvbn ships, not one of ours
    with pytest.raises(ValueError, match="most common passwords"):
        check_password_rules(password)


@pytest.mark.parametrize("password", ["password1234", "Password2024!", "x" * 12, "qwertyuiop[]", "smithsmith12"])
def test_easily_guessed_passwords_refused(password):
    with pytest.raises(ValueError, match="most common passwords|too easy to guess"):
        check_password_rules(password, email="ana.smith@example.com")


def test_generated_passwords_are_random_and_pass_the_rules():
    generated = {generate_password() for _ in range(20)}
    assert len(generated) == 20
    for pw in generated:
        check_password_rules(pw)
        assert len(pw) >= 16
