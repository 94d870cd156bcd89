"""Core memory for models without tool calling (``LLM_TOOLS=off``, or a server that says it
cannot do tools): at each heartbeat one constrained-JSON call (``response_format``
json_schema, which llama.cpp, vLLM, Ollama and OpenAI support) proposes core memory edits.
Each edit becomes the ``core_memory_append`` / ``core_memory_replace`` call it stands for
and is validated and run exactly like a tool call, so memory keeps working without tools.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.errors import ToolError
from bot.messages import ToolCall

MAX_EDITS = 4
_NO_TOOLS = re.compile(r"does not support tools|tools? (is |are )?not supported"
                       r"|tool[ _]choice.{0,40}not supported|unsupported.{0,20}tools?",
                       re.IGNORECASE)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "edits": {
            "type": "array",
            "maxItems": MAX_EDITS,
            "items": {
                "type": "object",
                "properties": {
                    "action": {"type": "string", "enum": ["append", "replace"]},
                    "label": {"type": "string", "enum": ["human", "persona"]},
                    "content": {"type": "string", "maxLength": 400},
                    "old_content": {"type": "string", "maxLength": 400},
                },
                "required": ["action", "label", "content", "old_content"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["edits"],
    "additionalProperties": False,
}

INSTRUCTION = (
    "[alert] Memory review. You cannot call tools now. Answer only with JSON proposing edits "
    "to core memory: {\"edits\": [{\"action\": \"append\" or \"replace\", \"label\": "
    "\"human\" or \"persona\", \"content\": new text, \"old_content\": exact text to replace "
    "(\"\" for append)}]}. Record stable facts about the person that are not in <human> yet. "
    "Answer {\"edits\": []} when nothing needs to change."
)


def response_format() -> dict[str, Any]:
    return {"type": "json_schema",
            "json_schema": {"name": "core_memory_edits", "strict": True, "schema": SCHEMA}}


def says_no_tools(message: str) -> bool:
    """Whether a server's error says it cannot do tool calling."""
    return bool(_NO_TOOLS.search(message))


def edit_calls(text: str) -> list[ToolCall]:
    """The tool calls the JSON answer stands for. Raises ToolError on an unusable answer."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolError(f"the memory review answer is not JSON ({exc.msg})") from None
    edits = data.get("edits") if isinstance(data, dict) else None
    if not isinstance(edits, list):
        raise ToolError("the memory review answer has no 'edits' list")
    calls = []
    for i, edit in enumerate(edits[:MAX_EDITS]):
        if not isinstance(edit, dict):
            raise ToolError(f"edit {i} is not an object")
        label, content = edit.get("label"), edit.get("content")
        if edit.get("action") == "replace":
            args = {"label": label, "old_content": edit.get("old_content"), "new_content": content}
            name = "core_memory_replace"
        else:
            args, name = {"label": label, "content": content}, "core_memory_append"
        args["request_heartbeat"] = False
        calls.append(ToolCall(f"json_edit_{i}", name, json.dumps(args)))
    return calls
