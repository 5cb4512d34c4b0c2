"""Inbound planning: one user's Outlook snapshot against Communifire's state, as a plan.

Owns ``plan_inbound`` (pure: state + snapshot + now -> ``Plan``) and ``apply_plan``
(pure: state + plan -> new state). ``apply_plan`` is the single source of truth of what
a plan does: the shell persists the difference between ``state`` and
``apply_plan(state, plan)``.

Which module decides a rule:

=====================================  ==============================================
rules                                  module
=====================================  ==============================================
the plan's values, applying a plan     ``actions.py`` (``Action``, ``Plan``, ``apply_plan``)
C1, A7, A9 adoption, C5, O5 copies     ``identity.py`` (new items: link or create)
D1, A4, A7, O2 edits of linked items   ``linked.py``
A1, A2, A4, O2 split series            ``split.py`` (a new series takes over a cut one)
C2, A1, D2, D3, O4, O5, O7             ``instances.py`` (items gone, exceptions, deleted
                                       instances)
C4, C5, A5, D3 RSVPs                   ``rsvps.py``
STYLE rule 6 (hold a mass delete)      ``safety.py``
the order the families run in          ``planner.py`` (``plan_inbound``)
shared helpers (no rule of their own)  ``common.py``, ``base.py`` (``PlannerBase``)
=====================================  ==============================================

Invariants:
- plan first, then act (STYLE rule 1): planning reads only its arguments; every action
  names the SPEC rule that caused it and a one-line reason; actions are ordered
  deterministically (by event, then phase, then key);
- idempotence: a converged state plans nothing; convergence:
  ``plan_inbound(apply_plan(s, p), snap)`` is empty for ``p = plan_inbound(s, snap)``;
- "changed" means the normalized content hash changed against the link's last synced
  snapshot (STYLE rule 5): a new changeKey alone, or our own write coming back, plans
  nothing (rule A9); a re-sent series causes work only for what differs (rule D1);
- Outlook's series splits never split a Communifire event (rules A1, A2): a new Outlook
  series that takes over a cut series becomes a child segment of the same event;
- an instance is keyed by its original start in UTC (rule D2); a deleted instance is
  found only by its absence, never at the window's edges or beyond a range cut (D3, O7);
- timestamps written into the state are whole seconds (Table Storage's precision), so
  a stored and reloaded state plans exactly like the in-memory one;
- a plan that would empty or mostly delete a user's calendar is *held* (STYLE rule 6):
  it is still returned, with ``held`` saying why it must not be applied.
"""

from core.plan.inbound.actions import ACTION_KINDS, Action, Plan, ReconcileError, apply_plan
from core.plan.inbound.identity import default_new_id
from core.plan.inbound.planner import plan_inbound
from core.plan.inbound.safety import SafetyPolicy

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
