"""Exception and warning hierarchy. User mistakes become these, never bare tracebacks."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AuditMetricsError",
    "CatalogueConflict",
    "CatalogueError",
    "CatalogueSaveError",
    "ExtractError",
    "Problem",
]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file, located as precisely as we can."""

    file: str
    message: str
    line: int | None = None
    column: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        col = f" [column {self.column!r}]" if self.column else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{where}:{col} {self.message}{hint}"


class AuditMetricsError(Exception):
    """Base class for every error a user can fix."""


class CatalogueError(AuditMetricsError):
    """The indicator catalogue is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem], partial: object | None = None) -> None:
        self.problems = problems
        self.partial = partial  # the valid parts (a LoadedCatalogue), for further checks
        super().__init__("\n".join(str(p) for p in problems))


class ExtractError(AuditMetricsError):
    """An extract cannot be read at all (not the same as excluded rows, which are reported)."""

    def __init__(self, problem: Problem, *more: Problem) -> None:
        self.problem = problem
        self.problems = [problem, *more]  # every problem found in the file, first one first
        super().__init__("\n".join(str(p) for p in self.problems))


class CatalogueConflict(AuditMetricsError):
    """The catalogue file changed after the editor loaded it; saving would overwrite that change."""

    def __init__(self, message: str, current_text: str) -> None:
        self.current_text = current_text  # the version on disk now, to show the editor a diff
        super().__init__(message)


class CatalogueSaveError(AuditMetricsError):
    """The catalogue could not be written (disk full, read-only); the file on disk is unchanged."""
