"""The one exception tree of irisd.

    IrisdError                      exit 1 unless a subclass says otherwise
    ├── ConfigError                 exit 78 (EX_CONFIG): a bad file, key or value; carries `key`
    ├── UsageError                  exit 64 (EX_USAGE): bad command-line arguments or input files
    ├── StateError                  exit 74 (EX_IOERR): the state directory or database cannot be used
    ├── ApiError                    exit 69 (EX_UNAVAILABLE): the local API refused or is unreachable
    │   └── AuthError               exit 77 (EX_NOPERM): the API said 401
    ├── ControlError                exit 70 (EX_SOFTWARE): the `iris` control program failed
    ├── CpfError                    exit 65 (EX_DATAERR): a CPF document is malformed; carries `line`
    ├── EmulatorError               exit 70: the emulated instance could not do what was asked
    ├── LlmError                    exit 69 (EX_UNAVAILABLE): a language model endpoint failed
    ├── PublishError                a sink failed; `retryable` says whether to try again
    └── RemediationError            a remediation step failed

In `irisd.core` expected outcomes are values (`Unparsed`, `Refusal`); these exceptions are for the
shell, the CLI and broken invariants. Other libraries' exceptions are translated at the edge.
"""

from __future__ import annotations


class IrisdError(Exception):
    """Base of every error irisd raises on purpose."""

    exit_code = 1


class ConfigError(IrisdError):
    """A configuration file, key or value is invalid. `key` names it."""

    exit_code = 78

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class UsageError(IrisdError):
    exit_code = 64


class StateError(IrisdError):
    exit_code = 74


class ApiError(IrisdError):
    exit_code = 69

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthError(ApiError):
    exit_code = 77


class ControlError(IrisdError):
    exit_code = 70


class CpfError(IrisdError):
    exit_code = 65

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message if line is None else f"line {line}: {message}")
        self.line = line


class EmulatorError(IrisdError):
    exit_code = 70


class LlmError(IrisdError):
    """The OpenAI-compatible endpoint behind `irisd generate --llm` is unreachable or refused."""

    exit_code = 69


class PublishError(IrisdError):
    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class RemediationError(IrisdError):
    exit_code = 70
