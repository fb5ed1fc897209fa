"""Domain errors. Each message says what to do next, in French (the users' language).

Only the CLI and the UI turn these into messages for people; the domain raises them.
"""

from __future__ import annotations


class AssistantError(Exception):
    """Base class: ``str(err)`` is a French message that ends with the fix."""

    exit_code = 1


class ConfigError(AssistantError):
    """A setting is wrong; the message names the setting and how to fix it."""

    exit_code = 2


class ModelNotFoundError(AssistantError):
    """A model file is missing from the models directory."""


class ModelInstallError(AssistantError):
    """Fetching, assembling, converting or verifying a model failed."""


class ChecksumError(ModelInstallError):
    """A model file does not have the expected sha256 (it has been deleted)."""


class LLMError(AssistantError):
    """The language model (local or server) failed to answer."""


class EmbeddingError(AssistantError):
    """The embedding model failed."""


class StoreError(AssistantError):
    """The vector store or the lexical index failed or is inconsistent."""


class EmbedderMismatchError(StoreError):
    """A collection was indexed with another embedding model than the configured one."""


class CollectionNotFoundError(StoreError):
    """The named collection does not exist."""


class DocumentError(AssistantError):
    """A document could not be read. ``reason`` is a short French explanation with the fix."""

    kind = "illisible"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EncryptedDocumentError(DocumentError):
    kind = "chiffré"


class CorruptDocumentError(DocumentError):
    kind = "corrompu"


class ScannedDocumentError(DocumentError):
    kind = "scanné"


class EmptyDocumentError(DocumentError):
    kind = "vide"


class TooLargeDocumentError(DocumentError):
    kind = "trop volumineux"


class UnsupportedDocumentError(DocumentError):
    kind = "format non pris en charge"


class TemplateError(AssistantError):
    """A template in prompts/ is missing or malformed."""


class BusyError(AssistantError):
    """The model is busy and the wait queue is full."""


class DraftingError(AssistantError):
    """A drafting request cannot be served as asked (too long, nothing to revise...)."""


class AuditError(AssistantError):
    """The audit log cannot be written or read, or a referenced draft does not exist."""
