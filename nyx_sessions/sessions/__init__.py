"""Ready-made sessions: pagination, confirmation, multi-step forms and polls.

Each keeps all its state in ``session.data`` (plain values only) and has a stable
``session_type``, so it survives restarts with a persistent store once registered::

    manager = SessionManager(client, store=store, sessions=[PaginationSession, ConfirmSession])

When they end or expire they tidy their message by message id (never through the
15-minute interaction token), and a message that was deleted meanwhile is only logged.
"""

from __future__ import annotations

from .choice import ChoiceSession
from .confirm import ConfirmSession
from .conversation_form import ConversationForm
from .fields import ChoiceField, FormField, TextField, Validator
from .form import FormSession
from .pagination import Page, PageLike, PageSource, PaginationSession, as_page

__all__ = [
    "ChoiceField",
    "ChoiceSession",
    "ConfirmSession",
    "ConversationForm",
    "FormField",
    "FormSession",
    "Page",
    "PageLike",
    "PageSource",
    "PaginationSession",
    "TextField",
    "Validator",
    "as_page",
]
