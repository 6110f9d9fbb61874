"""The database half of config.state_machines: the trigger that makes a state machine's
transition service the only writer of its status column (kept apart so models can import it
without importing the API layer)."""

import pgtrigger


def status_guard(*, name: str, setting: str, writer: str) -> pgtrigger.Trigger:
    """The BEFORE UPDATE OF status trigger for a model's `Meta.triggers`: a status change passes
    only when the transaction authorised exactly that row through `setting` (consumed by the
    write). `writer` names the one service allowed to write, for the error message."""
    return pgtrigger.Trigger(
        name=name,
        when=pgtrigger.Before,
        operation=pgtrigger.UpdateOf("status"),
        condition=pgtrigger.Q(old__status__df=pgtrigger.F("new__status")),
        declare=[("allowed", "text")],
        func=f"""
            allowed := coalesce(current_setting('{setting}', true), '');
            IF allowed = NEW.id::text THEN
                -- one write, one authorisation: a later write in this transaction needs its own
                PERFORM set_config('{setting}', '', true);
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '%.status changes only through {writer} (row %: % -> %)',
                TG_TABLE_NAME, NEW.id, OLD.status, NEW.status
                USING ERRCODE = 'insufficient_privilege';
        """,
    )
