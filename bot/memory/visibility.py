"""Where a memory came from, and which prompts may see it (docs/privacy.md).

Every stored piece of memory carries an origin label (``vis``):

- ``dm`` — said in a DM with the bot (or the terminal, a heartbeat, an admin import): the
  person's own, private scope. Anything without a label counts as ``dm``.
- ``g:PLATFORM:SERVER`` — said in a channel or thread of that Discord server / Slack
  workspace.
- ``*`` — public: the initial persona text, visible everywhere.

A prompt is assembled for a *view*: a DM (or heartbeat) sees everything of the person; a
channel event in server S sees only ``*`` and ``g:...:S``. Nothing said in a DM or in
another server reaches a channel prompt: not a core-memory line, not the summary, not a
FIFO message, not a recall or archival search hit.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.events import Event

DM = "dm"
PUBLIC = "*"


def of_event(event: Event) -> str:
    """The origin label of what is said in (and done for) this event."""
    ch = event.channel
    if ch.where not in ("channel", "thread"):
        return DM
    server = ch.server or event.user.scope
    return f"g:{event.user.platform}:{server}"


def allowed(view: str) -> list[str] | None:
    """Origin labels a view may see; None = all (the person's own DM view)."""
    return None if view == DM else [PUBLIC, view]


def visible(vis: str, view: str) -> bool:
    return view == DM or (vis or DM) in (PUBLIC, view)


def merged(labels: Iterable[str]) -> str:
    """The origin of something built from several items: theirs if they share one, else
    the most private (``dm``)."""
    found = {label or DM for label in labels}
    if found == {PUBLIC}:
        return PUBLIC
    found.discard(PUBLIC)
    return found.pop() if len(found) == 1 else DM
