"""membot core: per-user MemGPT-style agents over Redis (hot state) and Qdrant (vectors).

Nothing in this package imports ``adapters`` or a platform SDK.
"""

__version__ = "0.1.0"
