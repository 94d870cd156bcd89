"""`membot knowledge add|sync|list|show|remove|search` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import cli_env, membot  # noqa: F401  (cli_env is a fixture)


def test_add_sync_list_show_search_remove(cli_env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    """A folder is added (bad files named with their reason, exit 1, good ones written), a
    re-sync skips unchanged files and removes deleted ones, list shows versions and drift."""
    docs = tmp_path / "docs"
    (docs / "guides").mkdir(parents=True)
    (docs / "rules.md").write_text("# Rules\n\n## Voice\n\nNo music bots in the study room.\n")
    (docs / "guides" / "setup.html").write_text("<h1>Setup</h1><h2>Linux</h2><p>Run the installer.</p>")
    (docs / "logo.txt").write_bytes(b"\x89PNG\x00\x00binary")
    res = membot(["knowledge", "add", "--scope", "discord:77", str(docs)], cli_env)
    assert res.returncode == 1
    assert "logo.txt: looks binary" in res.stdout + res.stderr
    assert "2 added, 1 failed" in res.stdout
    (docs / "logo.txt").unlink()
    (docs / "rules.md").write_text("# Rules\n\n## Voice\n\nMusic bots only in #music.\n")
    res = membot(["knowledge", "sync", "--scope", "discord:77", str(docs), "--by", "ops"], cli_env)
    assert res.returncode == 0 and "1 updated, 1 unchanged" in res.stdout, res.stdout + res.stderr
    (docs / "guides" / "setup.html").unlink()
    res = membot(["knowledge", "sync", "--scope", "discord:77", str(docs)], cli_env)
    assert "1 unchanged, 1 removed" in res.stdout
    listing = json.loads(membot(["knowledge", "list", "--scope", "discord:77", "--json"], cli_env).stdout)
    assert [(d["source"], d["version"], d["by"]) for d in listing["docs"]] == [("rules.md", 2, "ops")]
    assert listing["drift"] == 1.0  # every chunk is new within the drift window
    shown = json.loads(membot(["knowledge", "show", "--scope", "discord:77", "rules.md"], cli_env).stdout)
    assert [e["version"] for e in shown["history"]] == [1, 2]
    found = membot(["knowledge", "search", "--scope", "discord:77", "where can music bots play?"], cli_env)
    assert "Rules > Voice (rules.md v2)" in found.stdout
    other = membot(["knowledge", "search", "--scope", "discord:78", "where can music bots play?"], cli_env)
    assert "no match" in other.stdout
    res = membot(["knowledge", "remove", "--scope", "discord:77", "rules.md"], cli_env)
    assert res.returncode == 0 and "removed rules.md" in res.stdout
    res = membot(["knowledge", "add", "--scope", "nonsense", str(docs)], cli_env)
    assert res.returncode == 1 and "not a knowledge scope" in res.stderr and "Traceback" not in res.stderr
