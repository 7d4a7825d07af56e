import pytest

from app.domain import permissions as perm


def test_admin_has_every_capability():
    assert perm.capabilities(perm.ADMIN) == perm.ALL_CAPABILITIES


def test_advanced_manages_audiences_but_not_users_or_channels():
    assert perm.can(perm.ADVANCED, perm.AUDIENCES_MANAGE)
    assert perm.can(perm.ADVANCED, perm.CAMPAIGNS_SEND)
    assert not perm.can(perm.ADVANCED, perm.USERS_MANAGE)
    assert not perm.can(perm.ADVANCED, perm.CHANNELS_MANAGE)


def test_basic_user_sends_campaigns_but_never_shapes_audiences():
    assert perm.can(perm.BASIC, perm.CAMPAIGNS_SEND)
    assert perm.can(perm.BASIC, perm.AUDIENCES_VIEW)
    for cap in (perm.AUDIENCES_MANAGE, perm.TEMPLATES_MANAGE, perm.USERS_MANAGE, perm.CHANNELS_MANAGE):
        assert not perm.can(perm.BASIC, cap)


def test_no_role_can_nothing_and_require_raises():
    assert perm.capabilities(None) == frozenset()
    with pytest.raises(perm.PermissionDenied):
        perm.require(None, perm.CAMPAIGNS_VIEW)
    with pytest.raises(perm.PermissionDenied):
        perm.require("superuser", perm.CAMPAIGNS_VIEW)


def test_unknown_capability_is_a_programming_error():
    with pytest.raises(ValueError):
        perm.can(perm.ADMIN, "campaigns:explode")


def test_validate_role_normalises_and_refuses():
    assert perm.validate_role(" Admin ") == "admin"
    with pytest.raises(ValueError, match="Role must be one of"):
        perm.validate_role("owner")
