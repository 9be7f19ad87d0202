"""Typed errors of the DFA layer (subclasses of the stack's shared error types)."""

from __future__ import annotations

from firmware_iface.errors import ConfigurationError, InputError, OPUError


class DFAConfigurationError(ConfigurationError):
    """The DFA set-up is inconsistent: no marked layers, unknown layer name, or a projector
    whose n_in/n_out do not match the network's output width / marked layers' widths."""


class DFAInputError(InputError):
    """A tensor met during a DFA pass has the wrong shape or non-finite values."""


class ProjectorError(OPUError):
    """A projector returned something other than one finite (rows, n_out) projection."""
