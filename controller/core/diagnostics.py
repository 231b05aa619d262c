"""Validation findings as values. Loaders collect every finding into a list instead of raising
on the first, so a user fixes a whole file in one round trip."""

from __future__ import annotations

from dataclasses import dataclass

from mlflow_gitops.core.errors import GitOpsError


@dataclass(frozen=True, order=True)
class Diagnostic:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "message": self.message}


class InvalidDesiredState(GitOpsError):
    """Raised by callers that need a valid state and got diagnostics instead."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = list(diagnostics)  # the loader puts causes first
        first = self.diagnostics[0] if self.diagnostics else "invalid desired state"
        more = f" (and {len(self.diagnostics) - 1} more)" if len(self.diagnostics) > 1 else ""
        super().__init__(f"{first}{more}")
