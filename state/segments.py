"""Segments (SPEC S7): the overview, and the rule builder with a live count (/segments/new, /segments/[id]).

Every rule edit recounts the matching contacts with the rules as they stand (`count_segment`, evaluated
as SQL); the value box is debounced in the browser so typing does not count on every key. Basic users
see segments and counts; every changing handler requires audiences:manage. `?return_to=/campaigns/...`
sends the user back after creating a segment, with `created_segment=<id>` added.
"""

from __future__ import annotations

import secrets

import reflex as rx

from app.db import session_scope
from app.domain import permissions as perm
from app.domain import segment_rules as rules_domain
from app.services.audiences import contacts as contacts_service
from app.services.audiences import segments as segments_service
from components import routes
from state import offload
from state.base import AppState
from state.guard import current_actor, requires
from state.lists import return_url, safe_return_to
from state.rows import as_text

SEGMENTS_ROUTE = routes.SEGMENTS


def _rule_code(rule: dict) -> str:
    value = rule.get("value", "")
    value = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return f"{rule.get('field', '')} {rule.get('op', '')} {value}".strip()


class SegmentsState(AppState):
    rows: list[dict[str, str]] = []
    loaded: bool = False
    delete_id: str = ""
    delete_name: str = ""

    async def _refresh(self, fresh: bool = False) -> None:
        """Every segment with its count (one count per segment), off the event loop, one at a time per user,
        answered from a 5-second cache unless `fresh` (state/offload.py)."""
        actor = current_actor()

        def overview() -> list[dict]:
            with session_scope() as session:
                rows = segments_service.list_segments(session=session, actor=actor)
                # The rules as stored ("custom.loyalty_tier equals gold"), under the sentence: field keys are
                # what the campaign variables and the API use.
                for row in rows:
                    rules = segments_service.get_segment(session=session, actor=actor, segment_id=row["id"])["rules"]
                    row["code"] = "; ".join(_rule_code(r) for r in rules)
                    row["contacts"] = "—" if row["contacts"] is None else f"{row['contacts']:,}"
                return rows

        if fresh:
            offload.forget(actor)
        self.rows = as_text(await offload.run(actor, "segments_overview", overview))
        self.loaded = True

    @requires(perm.AUDIENCES_VIEW)
    async def load(self):
        await self._refresh()

    @requires(perm.AUDIENCES_MANAGE)
    def ask_delete(self, segment_id: str):
        row = next((r for r in self.rows if r["id"] == str(segment_id)), None)
        if row is None:
            return rx.toast.error("That segment no longer exists.")
        self.delete_id, self.delete_name = row["id"], row["name"]

    @requires(perm.AUDIENCES_MANAGE)
    def cancel_delete(self):
        self.delete_id, self.delete_name = "", ""

    @requires(perm.AUDIENCES_MANAGE)
    async def confirm_delete(self):
        if not self.delete_id:
            return rx.toast.error("Choose a segment to delete.")
        name, segment_id = self.delete_name, self.delete_id
        self.delete_id, self.delete_name = "", ""
        try:
            with session_scope() as session:
                segments_service.delete_segment(session=session, actor=current_actor(), segment_id=segment_id)
        except segments_service.SegmentError as exc:
            return rx.toast.error(str(exc))
        await self._refresh(fresh=True)
        return rx.toast.success(f"Segment {name} deleted.")


def _rule_row(field: str = "country", op: str = "equals", value: str = "") -> dict[str, str]:
    kind = "custom" if field.startswith(rules_domain.CUSTOM_PREFIX) else rules_domain.FIELDS.get(field, "text")
    return {
        "rid": secrets.token_hex(4),
        "field": field,
        "op": op,
        "value": value,
        "kind": kind,
        "needs_value": "" if op in rules_domain.NO_VALUE_OPERATORS else "yes",
    }


class SegmentEditorState(AppState):
    segment_id: str = ""  # "" for a new segment
    name: str = ""
    description: str = ""
    match: str = "all"
    rules: list[dict[str, str]] = []
    field_options: list[dict[str, str]] = []  # value, label (built-in fields, then custom fields)
    live_count: str = ""
    count_error: str = ""
    form_error: str = ""
    loaded: bool = False
    missing: bool = False
    return_to: str = ""
    confirm_delete_open: bool = False
    form_key: str = "0"

    def _rules_payload(self) -> list[dict]:
        return [{"field": r["field"], "op": r["op"], "value": r["value"]} for r in self.rules]

    async def _recount(self) -> None:
        """The live count, off the event loop (a rule on a custom field reads every contact): one count at a
        time per user, the same rules answered from a 5-second cache (state/offload.py)."""
        actor, rules, match = current_actor(), self._rules_payload(), self.match

        def count_now() -> int:
            with session_scope() as session:
                return segments_service.count_segment(session=session, actor=actor, rules=rules, match=match)

        try:
            count = await offload.run(actor, ("segment_count", repr(rules), match), count_now)
        except segments_service.SegmentError as exc:
            self.live_count, self.count_error = "", str(exc)
            return
        self.live_count, self.count_error = f"{count:,}", ""

    @requires(perm.AUDIENCES_VIEW)
    async def load_editor(self):
        params = self.router.page.params
        self.return_to = safe_return_to(params.get("return_to", ""))
        self.segment_id, self.form_error, self.confirm_delete_open, self.missing = "", "", False, False
        actor = current_actor()

        def custom_keys() -> list[str]:  # reads the custom fields of the whole base: off the loop too
            with session_scope() as session:
                return contacts_service.custom_field_keys(session=session, actor=actor)

        custom = await offload.run(actor, "custom_field_keys", custom_keys)
        self.field_options = [{"value": k, "label": rules_domain.FIELD_LABELS[k]} for k in rules_domain.FIELDS] + [
            {"value": rules_domain.CUSTOM_PREFIX + k, "label": f"{k} (custom)"} for k in custom
        ]
        wanted = str(params.get("segment_id", "") or "")[:20]
        if wanted:
            try:
                with session_scope() as session:
                    got = segments_service.get_segment(session=session, actor=current_actor(), segment_id=wanted)
            except segments_service.SegmentError:
                self.missing, self.loaded = True, True
                return
            self.segment_id, self.name, self.description, self.match = (
                str(got["id"]),
                got["name"],
                got["description"],
                got["match"],
            )
            self.rules = [
                _rule_row(
                    r["field"],
                    r["op"],
                    ", ".join(r["value"]) if isinstance(r["value"], list) else str(r.get("value", "")),
                )
                for r in got["rules"]
            ]
            self._add_unknown_fields()
        else:
            self.name, self.description, self.match, self.rules = "", "", "all", [_rule_row()]
        self.form_key = secrets.token_hex(4)
        await self._recount()
        self.loaded = True

    def _add_unknown_fields(self) -> None:
        known = {o["value"] for o in self.field_options}
        for r in self.rules:
            if r["field"] not in known:
                self.field_options = [*self.field_options, {"value": r["field"], "label": r["field"]}]
                known.add(r["field"])

    @requires(perm.AUDIENCES_MANAGE)
    def set_name(self, value: str):
        self.name = str(value)[:120]

    @requires(perm.AUDIENCES_MANAGE)
    def set_description(self, value: str):
        self.description = str(value)[:500]

    @requires(perm.AUDIENCES_MANAGE)
    async def set_match(self, value: str):
        if value not in rules_domain.MATCHES:
            return rx.toast.error("Match all or any of the rules.")
        self.match = value
        await self._recount()

    @requires(perm.AUDIENCES_MANAGE)
    async def add_rule(self):
        if len(self.rules) >= rules_domain.MAX_RULES:
            return rx.toast.error(f"A segment has at most {rules_domain.MAX_RULES} rules.")
        self.rules = [*self.rules, _rule_row()]
        await self._recount()

    @requires(perm.AUDIENCES_MANAGE)
    async def remove_rule(self, rid: str):
        self.rules = [r for r in self.rules if r["rid"] != str(rid)]
        await self._recount()

    def _update_rule(self, rid: str, **changes: str) -> bool:
        found = False
        updated = []
        for r in self.rules:
            if r["rid"] == str(rid):
                found = True
                r = {**r, **changes}
            updated.append(r)
        self.rules = updated
        return found

    @requires(perm.AUDIENCES_MANAGE)
    async def set_rule_field(self, rid: str, value: str):
        value = str(value)
        if value not in {o["value"] for o in self.field_options}:
            return rx.toast.error("Choose a field from the list.")
        fresh = _rule_row(value)
        ops = rules_domain.operators_for(value)
        current = next((r for r in self.rules if r["rid"] == str(rid)), None)
        op = current["op"] if current and current["op"] in ops else ops[0]
        if self._update_rule(
            rid,
            field=value,
            kind=fresh["kind"],
            op=op,
            needs_value="" if op in rules_domain.NO_VALUE_OPERATORS else "yes",
        ):
            await self._recount()

    @requires(perm.AUDIENCES_MANAGE)
    async def set_rule_op(self, rid: str, value: str):
        value = str(value)
        if value not in rules_domain.OPERATORS:
            return rx.toast.error("Choose an operator from the list.")
        if self._update_rule(rid, op=value, needs_value="" if value in rules_domain.NO_VALUE_OPERATORS else "yes"):
            await self._recount()

    @requires(perm.AUDIENCES_MANAGE)
    async def set_rule_value(self, rid: str, value: str):
        if self._update_rule(rid, value=str(value)[: rules_domain.MAX_VALUE_LENGTH * 4]):
            await self._recount()

    @requires(perm.AUDIENCES_MANAGE)
    def save(self):
        try:
            with session_scope() as session:
                if self.segment_id:
                    saved = segments_service.update_segment(
                        session=session,
                        actor=current_actor(),
                        segment_id=self.segment_id,
                        name=self.name,
                        rules=self._rules_payload(),
                        match=self.match,
                        description=self.description,
                    )
                else:
                    saved = segments_service.create_segment(
                        session=session,
                        actor=current_actor(),
                        name=self.name,
                        rules=self._rules_payload(),
                        match=self.match,
                        description=self.description,
                    )
                saved_id, saved_name = saved.id, saved.name
        except segments_service.SegmentError as exc:
            self.form_error = str(exc)
            return
        self.form_error = ""
        offload.forget(current_actor())  # the segments page and the wizard must show it, not a cached answer
        if self.segment_id:
            return rx.toast.success(f"Segment {saved_name} saved.")
        target = return_url(self.return_to, "created_segment", saved_id) if self.return_to else SEGMENTS_ROUTE
        return [rx.toast.success(f"Segment {saved_name} created."), rx.redirect(target)]

    @requires(perm.AUDIENCES_MANAGE)
    def ask_delete(self):
        if not self.segment_id:
            return rx.toast.error("This segment is not saved yet.")
        self.confirm_delete_open = True

    @requires(perm.AUDIENCES_MANAGE)
    def cancel_delete(self):
        self.confirm_delete_open = False

    @requires(perm.AUDIENCES_MANAGE)
    def delete(self):
        self.confirm_delete_open = False
        if not self.segment_id:
            return rx.toast.error("This segment is not saved yet.")
        try:
            with session_scope() as session:
                segments_service.delete_segment(session=session, actor=current_actor(), segment_id=self.segment_id)
        except segments_service.SegmentError as exc:
            return rx.toast.error(str(exc))
        name, self.segment_id = self.name, ""
        offload.forget(current_actor())
        return [rx.toast.success(f"Segment {name} deleted."), rx.redirect(SEGMENTS_ROUTE)]
