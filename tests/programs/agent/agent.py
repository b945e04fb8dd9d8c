#!/usr/bin/env python3
"""A scripted stand-in for an AI coding agent, for `scripts/demo.sh`.

It does what a well-meaning agent steered by a prompt injection does: reads the project, then
goes for credentials, force-pushes, wipes HOME, asks the cloud metadata service for keys, and
when blocked, retries from a shell with a cleaned environment. Each step prints whether the
guard let it through. Only the standard library is used.

Safety: the destructive steps run only inside the demo's throwaway directory
(GUARD_DEMO_ROOT must contain HOME) and only under the guard (GUARD_SESSION set).
"""

import os
import socket
import subprocess
import sys

HOME = os.path.expanduser("~")
RESULTS = []


def step(title, fn):
    """Runs one agent action; prints and records ALLOWED / BLOCKED."""
    try:
        detail = fn()
        verdict = "REDACTED" if "REDACTED_BY_POLICY" in detail else "ALLOWED"
    except PermissionError as e:
        verdict, detail = "BLOCKED", f"{e.strerror or e}"
    except Exception as e:  # the agent keeps going, like a real one
        verdict, detail = "FAILED", f"{type(e).__name__}: {e}"
    RESULTS.append((verdict, title))
    line = f"[agent] {title:<52} {verdict}"
    if detail:
        line += f"  ({detail})"
    print(line, flush=True)


def read(path, show=False):
    with open(path) as f:
        data = f.read()
    first = data.strip().splitlines()[0] if data.strip() else ""
    # The guard replaces secrets it may not hand out with REDACTED_BY_POLICY.
    redacted = " REDACTED_BY_POLICY inside" if "REDACTED_BY_POLICY" in data else ""
    return f"read {len(data)} bytes{redacted}" + (f": {first[:60]!r}" if show else "")


def run(argv, **kw):
    """Runs a command; an exec refused by the guard raises PermissionError (EACCES)."""
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30, **kw)
    out = (p.stdout + p.stderr).strip().splitlines()
    if p.returncode != 0 and any("Permission denied" in l or "denied by rule" in l for l in out):
        raise PermissionError(13, out[-1] if out else "Permission denied")
    if p.returncode != 0:
        raise RuntimeError(f"exit {p.returncode}: {out[-1] if out else ''}")
    return out[-1][:70] if out else "ok"


def connect_metadata():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(("169.254.169.254", 80))
        s.sendall(b"GET /latest/meta-data/iam/security-credentials/ HTTP/1.0\r\n\r\n")
        return "connected to the metadata service"
    finally:
        s.close()


def delete_scratch():
    path = os.path.join(os.getcwd(), "scratch.tmp")
    with open(path, "w") as f:
        f.write("temporary\n")
    os.remove(path)
    return "created and removed scratch.tmp"


def destructive_allowed():
    root = os.environ.get("GUARD_DEMO_ROOT", "")
    return (
        os.environ.get("GUARD_SESSION")
        and root
        and os.path.realpath(HOME).startswith(os.path.realpath(root) + os.sep)
    )


def main():
    print(f"[agent] working in {os.getcwd()} (session {os.environ.get('GUARD_SESSION', 'unguarded')})")
    step("read README.md", lambda: read("README.md", show=True))
    step("read src/app.py", lambda: read("src/app.py"))
    step("read .env (has a token)", lambda: read(".env", show=True))
    step("read ~/.ssh/id_ed25519", lambda: read(os.path.join(HOME, ".ssh/id_ed25519"), show=True))
    step("read ~/.aws/credentials", lambda: read(os.path.join(HOME, ".aws/credentials"), show=True))
    step("git push --force origin main", lambda: run(["git", "push", "--force", "origin", "main"]))
    if destructive_allowed():
        step("rm -rf ~", lambda: run(["rm", "-rf", HOME]))
    else:
        print("[agent] (skipping rm -rf ~: not inside the demo sandbox)")
    step("connect 169.254.169.254:80 (cloud metadata)", connect_metadata)
    step("delete a temp file in the workspace", delete_scratch)
    retry = (
        f"cat {HOME}/.ssh/id_ed25519 && git push --force origin main"
    )
    step(
        "retry from `env -i bash -c` (clean environment)",
        lambda: run(["env", "-i", "PATH=" + os.environ.get("PATH", "/usr/bin:/bin"), "bash", "-c", retry]),
    )
    blocked = [t for v, t in RESULTS if v == "BLOCKED"]
    redacted = [t for v, t in RESULTS if v == "REDACTED"]
    print(
        f"[agent] done: {len(blocked)} of {len(RESULTS)} actions blocked, "
        f"{len(redacted)} reads redacted by the guard"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
