import pytest

from app import secret_box
from app.settings import reset_settings_cache


@pytest.fixture()
def key(monkeypatch):
    def use(value: str):
        monkeypatch.setenv("HUBCAST_SECRET_KEY", value)
        reset_settings_cache()

    use("k" * 40)
    yield use
    reset_settings_cache()


def test_sealed_value_hides_the_secret_and_opens_again(key):
    sealed = secret_box.seal("EAAG-very-secret-token")
    assert sealed.startswith(secret_box.PREFIX) and "very-secret" not in sealed
    assert secret_box.unseal(sealed) == "EAAG-very-secret-token"
    assert secret_box.seal("EAAG-very-secret-token") != sealed  # random IV: equal secrets don't look equal


def test_empty_stays_empty_so_the_ui_can_say_not_set(key):
    assert secret_box.seal("") == "" and secret_box.unseal("") == ""


def test_another_secret_key_cannot_read_it(key):
    sealed = secret_box.seal("app-secret")
    key("z" * 40)
    assert secret_box.unseal(sealed) == ""


def test_values_stored_before_encryption_still_read(key):
    assert secret_box.unseal("legacy-plain") == "legacy-plain"


def test_a_secret_too_long_for_its_column_is_refused(key):
    column = secret_box.EncryptedString(255)
    assert column.process_bind_param("x" * 100, None).startswith(secret_box.PREFIX)
    with pytest.raises(ValueError, match="too long"):
        column.process_bind_param("x" * 200, None)
