"""Inbound planning (rename step; the split follows)."""

from core.plan.inbound.actions import (
    ACTION_KINDS,
    Action,
    Plan,
    ReconcileError,
    SafetyPolicy,
    apply_plan,
    default_new_id,
    plan_inbound,
)

__all__ = [
    "ACTION_KINDS",
    "Action",
    "Plan",
    "ReconcileError",
    "SafetyPolicy",
    "apply_plan",
    "default_new_id",
    "plan_inbound",
]
