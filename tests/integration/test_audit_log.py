"""The admins' Audit log: newest first, paged on the server, refused to everyone else."""

from __future__ import annotations

import pytest

from app.domain import permissions as perm
from app.services.accounts import audit


def test_admin_reads_the_log_newest_first_one_page_at_a_time(session, make_user):
    admin = make_user("admin")
    for n in range(7):
        audit.record(
            session=session,
            actor=admin,
            action=f"test.step{n}",
            target_type="thing",
            target_id=n,
            detail={"n": n},
            ip="198.51.100.4",
        )
    session.commit()
    first = audit.audit_page(session=session, actor=admin, page=1, page_size=3)
    assert first.total >= 7 and first.pages == -(-first.total // 3)
    assert [r["action"] for r in first.rows] == ["test.step6", "test.step5", "test.step4"]
    assert first.rows[0]["actor"] == admin.email and first.rows[0]["target"] == "thing 6"
    assert first.rows[0]["detail"] == "n: 6" and first.rows[0]["ip"] == "198.51.100.4"
    second = audit.audit_page(session=session, actor=admin, page=2, page_size=3)
    assert [r["action"] for r in second.rows] == ["test.step3", "test.step2", "test.step1"]
    beyond = audit.audit_page(session=session, actor=admin, page=999, page_size=3)
    assert beyond.page == beyond.pages and beyond.rows  # past the end: the last page


@pytest.mark.parametrize("role", [perm.ADVANCED, perm.BASIC])
def test_only_admins_read_the_log(session, make_user, role):
    user = make_user(role)
    with pytest.raises(perm.PermissionDenied):
        audit.audit_page(session=session, actor=user)
    with pytest.raises(perm.NotAuthenticated):
        audit.audit_page(session=session, actor=None)
