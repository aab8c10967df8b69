"""Checks turn judgments into a verdict. Each check is one small class; ``Policy`` runs them."""

from compliance.checks.base import Check, CheckContext, PriorPhoto
from compliance.checks.policy import DEFAULT_CHECKS, Policy

__all__ = ["DEFAULT_CHECKS", "Check", "CheckContext", "Policy", "PriorPhoto"]
