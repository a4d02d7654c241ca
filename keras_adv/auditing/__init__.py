"""Auditing: the whole threat model of a model (evasion with the masking
checks, an example grid, certification, a poisoning scan) in one
`AuditReport`, written as JSON and as one self-contained web page.
`keras_adv.audit` is `auditing.audit`; `keras-adv audit` is its command
(`docs/audit.md`)."""

from keras_adv.auditing.core import audit
from keras_adv.auditing.report import AuditReport

__all__ = ["AuditReport", "audit"]
