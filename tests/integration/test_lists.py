"""Lists (SPEC S6): static sets of contacts; admins and advanced users change them, basic users only look."""

import pytest
from sqlmodel import select

from app.domain.permissions import PermissionDenied
from app.models import AuditLog, Contact, ContactList, ListMembership
from app.services.audiences import lists
from app.services.audiences.lists import ListError


@pytest.fixture()
def people(session):
    contacts = [Contact(first_name=n, last_name="Doe") for n in ("Ann", "Bob", "Cy")]
    session.add_all(contacts)
    session.commit()
    return [c.id for c in contacts]


def test_create_add_members_and_see_them(session, make_user, people):
    user = make_user("advanced")
    newsletter = lists.create_list(session=session, actor=user, name="Newsletter", description="Sign-ups")
    assert (
        lists.add_members(session=session, actor=user, list_id=newsletter.id, contact_ids=people[:2], source="import")
        == 2
    )
    assert lists.add_members(session=session, actor=user, list_id=newsletter.id, contact_ids=people) == 1
    session.commit()
    overview = lists.list_lists(session=session, actor=make_user("basic"))
    assert [(r["name"], r["members"], r["source"]) for r in overview] == [("Newsletter", 3, "Import, Manual")]
    page = lists.members_page(session=session, actor=make_user("basic"), list_id=newsletter.id, page_size=2)
    assert page.total == 3 and [(r["name"], r["source"]) for r in page.rows] == [
        ("Ann Doe", "Import"),
        ("Bob Doe", "Import"),
    ]
    assert lists.members_page(session=session, actor=user, list_id=newsletter.id, search="cy").total == 1
    actions = session.exec(
        select(AuditLog.action).where(AuditLog.action.startswith("list.")).order_by(AuditLog.id)
    ).all()
    assert actions == ["list.create", "list.add_members", "list.add_members"]


def test_remove_members_keeps_the_contacts(session, make_user, people):
    user = make_user("admin")
    vip = lists.create_list(session=session, actor=user, name="VIP")
    lists.add_members(session=session, actor=user, list_id=vip.id, contact_ids=people)
    assert lists.remove_members(session=session, actor=user, list_id=vip.id, contact_ids=[people[0], 999]) == 1
    session.commit()
    assert lists.get_list(session=session, actor=user, list_id=vip.id)["members"] == 2
    assert len(session.exec(select(Contact)).all()) == 3


def test_rename_and_unique_names(session, make_user):
    user = make_user("advanced")
    first = lists.create_list(session=session, actor=user, name="VIP")
    lists.create_list(session=session, actor=user, name="Newsletter")
    with pytest.raises(ListError, match='A list named "vip" already exists'):
        lists.create_list(session=session, actor=user, name="vip")
    with pytest.raises(ListError, match="already exists"):
        lists.rename_list(session=session, actor=user, list_id=first.id, name="NEWSLETTER")
    with pytest.raises(ListError, match="Give the list a name"):
        lists.rename_list(session=session, actor=user, list_id=first.id, name="   ")
    assert (
        lists.rename_list(session=session, actor=user, list_id=first.id, name="Best customers").name == "Best customers"
    )


def test_delete_removes_memberships_only(session, make_user, people):
    user = make_user("advanced")
    gone = lists.create_list(session=session, actor=user, name="Gone")
    lists.add_members(session=session, actor=user, list_id=gone.id, contact_ids=people)
    session.commit()
    lists.delete_list(session=session, actor=user, list_id=gone.id)
    session.commit()
    assert session.exec(select(ContactList)).all() == [] and session.exec(select(ListMembership)).all() == []
    assert len(session.exec(select(Contact)).all()) == 3


@pytest.mark.parametrize(
    "bad, message",
    [
        ("1,2", "Choose the contacts to add or remove."),
        (["x"], "Contact ids must be numbers."),
        ([998, 999], "Those contacts no longer exist."),
    ],
)
def test_bad_member_input_is_refused(session, make_user, bad, message):
    user = make_user("advanced")
    target = lists.create_list(session=session, actor=user, name="T")
    with pytest.raises(ListError) as info:
        lists.add_members(session=session, actor=user, list_id=target.id, contact_ids=bad)
    assert str(info.value) == message


def test_unknown_source_is_refused(session, make_user, people):
    user = make_user("advanced")
    target = lists.create_list(session=session, actor=user, name="T")
    with pytest.raises(ListError, match="Source must be one of manual, import, integration"):
        lists.add_members(session=session, actor=user, list_id=target.id, contact_ids=people, source="api")


@pytest.mark.parametrize("action", ["create", "rename", "delete", "add", "remove"])
def test_basic_user_cannot_change_lists_and_nothing_changes(session, make_user, people, action):
    admin, basic = make_user("admin"), make_user("basic")
    vip = lists.create_list(session=session, actor=admin, name="VIP")
    lists.add_members(session=session, actor=admin, list_id=vip.id, contact_ids=people[:1])
    session.commit()
    calls = {
        "create": lambda: lists.create_list(session=session, actor=basic, name="Mine"),
        "rename": lambda: lists.rename_list(session=session, actor=basic, list_id=vip.id, name="Mine"),
        "delete": lambda: lists.delete_list(session=session, actor=basic, list_id=vip.id),
        "add": lambda: lists.add_members(session=session, actor=basic, list_id=vip.id, contact_ids=people),
        "remove": lambda: lists.remove_members(session=session, actor=basic, list_id=vip.id, contact_ids=people),
    }
    with pytest.raises(PermissionDenied):
        calls[action]()
    session.rollback()
    assert [(r["name"], r["members"]) for r in lists.list_lists(session=session, actor=basic)] == [("VIP", 1)]
