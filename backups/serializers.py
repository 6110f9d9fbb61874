from rest_framework import serializers

from backups.models import BackupLog, RecoverySnapshot, SyncStatus


class SyncStatusSerializer(serializers.ModelSerializer):
    class Meta:
        model = SyncStatus
        fields = ["target", "status", "synced_at", "lag", "attempts", "error"]


class BackupSerializer(serializers.ModelSerializer):
    sync_statuses = SyncStatusSerializer(many=True, read_only=True)

    class Meta:
        model = BackupLog
        fields = [
            "id",
            "kind",
            "status",
            "started_at",
            "finished_at",
            "duration",
            "size",
            "sha256",
            "storage",
            "file_name",
            "database",
            "pg_dump_version",
            "server_version",
            "row_counts",
            "verified_at",
            "restore_tested_at",
            "restore_test_result",
            "error",
            "sync_statuses",
        ]


class BackupCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=BackupLog.Kind.choices, default=BackupLog.Kind.MANUAL)


class SnapshotSerializer(serializers.ModelSerializer):
    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None)

    class Meta:
        model = RecoverySnapshot
        fields = [
            "id",
            "shop",
            "sha256",
            "size",
            "note",
            "created_by",
            "created_at",
            "expires_at",
            "restored_at",
        ]


class SnapshotCreateSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class SnapshotRestoreResultSerializer(serializers.Serializer):
    snapshot = serializers.UUIDField()
    pre_restore_snapshot = serializers.UUIDField()
    changes = serializers.DictField()
