"""Budgets: the limits of a request (``Budget``) and who spent what against them (``Ledger``)."""

from ponder.budgets.budget import Budget
from ponder.budgets.ledger import Ledger, Reservation

__all__ = ["Budget", "Ledger", "Reservation"]
