"""The knowledge base of a place: documents a Discord guild, a Slack workspace or the whole
deployment gave the bot (FAQ, rules, handbook, release notes), searchable by the agent of
every member talking there.

- ``readers`` (with ``html``, ``pdf``, ``document``): files (Markdown, text,
  reStructuredText, HTML, PDF) to titled sections of paragraphs; bad files are refused
  with ``KnowledgeError`` before anything is written.
- ``ingest``: files and folders into a scope (``add``, ``sync``), one report per file.
- ``chunking``: sections to chunks that never cross a heading and split at paragraphs,
  each with its source, title, section path and position.
- ``catalog``: documents, versions (content hash, history: what changed, when, by whom)
  and the drift figure of a scope, kept as durable documents in the vector store.
- ``base``: ``KnowledgeBase``, ingestion (new chunks, then the version switch, then the
  old chunks go) and search over the scopes of a place.
- ``scopes``: scope names (``global``, ``discord:GUILD``, ``slack:TEAM``).
- ``render``: search results as text citing the document and section.
"""
