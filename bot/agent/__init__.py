"""The agent loop and what it drives: main-context assembly, tools, the LLM and token counts."""
