"""Memory: a user's working memory (core blocks, summary, FIFO), its hot-state repository, and
long-term recall and archival storage with their search."""
