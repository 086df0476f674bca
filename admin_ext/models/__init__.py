"""Staff-tool models, one module per concern (audit trail, bulk jobs, exports)."""

from admin_ext.models.audit import AuditEvent, AuditOutcome, TokenAction
from admin_ext.models.exports import ExportJob, ExportStatus
from admin_ext.models.jobs import BulkJob, BulkJobItem, ItemStatus, JobSource
from admin_ext.models.signins import SignInEvent

__all__ = [
    "AuditEvent",
    "AuditOutcome",
    "BulkJob",
    "BulkJobItem",
    "ExportJob",
    "ExportStatus",
    "ItemStatus",
    "JobSource",
    "SignInEvent",
    "TokenAction",
]
