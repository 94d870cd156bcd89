"""Knowledge scopes: whose knowledge base a document belongs to.

- ``global``: the whole deployment (the operator's documents), searched everywhere;
- ``discord:GUILD_ID``: one Discord server;
- ``slack:TEAM_ID``: one Slack workspace;
- ``PLATFORM:ID`` in general (the terminal and tests use their own platform names).

A member's agent searches the scope of the place the message was written in plus
``global``, never another place's (``scopes_of``).
"""

from __future__ import annotations

import re

from bot.errors import KnowledgeError
from bot.events import Event

GLOBAL = "global"
_SCOPE = re.compile(r"^[a-z][a-z0-9_-]{0,19}:[A-Za-z0-9_.-]{1,80}$")


def parse_scope(text: str) -> str:
    """A valid scope name, or ``KnowledgeError`` saying what one looks like."""
    scope = text.strip()
    if scope == GLOBAL or (_SCOPE.match(scope) and not scope.endswith(":-")):
        return scope
    raise KnowledgeError(f"'{text}' is not a knowledge scope: use global, discord:GUILD_ID "
                         "or slack:TEAM_ID")


def place_of(event: Event) -> str:
    """The scope of the place an event comes from ('' when it has none, e.g. a Discord DM):
    the adapter's ``event.place``, else the user's platform scope (a Slack workspace)."""
    if event.place:
        return event.place
    scope = event.user.scope
    return f"{event.user.platform}:{scope}" if scope and scope != "-" else ""


def scopes_of(event: Event) -> list[str]:
    """The scopes an agent may search for this event: its place's, then ``global``."""
    place = place_of(event)
    return [place, GLOBAL] if place and place != GLOBAL else [GLOBAL]
