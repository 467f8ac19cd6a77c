"""Moved to `hwgptbench.validation` (one owner of argument checks); kept as a re-export."""
from ..validation import check_bool, check_int, check_number  # noqa: F401

__all__ = ["check_int", "check_number", "check_bool"]
