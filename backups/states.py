"""The backup state machine: `running → succeeded | failed`, both terminal.

A backup row is created `running` when it is queued or started; the dump ends it. Only
`backups.services.backup_transition` writes the status, together with what the move records
(the archive's name, size and sha256 for `succeeded`, the error for `failed`); a database trigger
refuses every other status write.
"""

from backups.models import BACKUP_STATUS_SETTING, BackupLog
from config.state_machines import StateMachine

S = BackupLog.Status

BACKUP_TRANSITIONS: dict[str, frozenset[str]] = {
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
}

BACKUP_MACHINE = StateMachine(entity="backup", transitions=BACKUP_TRANSITIONS, setting=BACKUP_STATUS_SETTING)
