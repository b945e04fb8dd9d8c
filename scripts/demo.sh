#!/usr/bin/env bash
# The main job: build everything, then run an agent-like program under the guard with the
# default policy in a throwaway HOME and workspace, and show what the guard blocked.
#
#   ./scripts/demo.sh              # release build (as the README says)
#   DEMO_PROFILE=debug ./scripts/demo.sh   # reuse a debug build
#   DEMO_KEEP=1 ./scripts/demo.sh  # keep the throwaway directory for inspection
#   DEMO_POLICY=FILE ./scripts/demo.sh     # another policy instead of the embedded default
#
# Nothing outside the temp directory is touched: HOME and GUARD_STATE_DIR point into it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PROFILE=${DEMO_PROFILE:-release}

bash scripts/setup.sh
if [ "$PROFILE" = release ]; then
  cargo build --workspace --release
else
  cargo build --workspace
fi
GUARDCTL=$ROOT/target/$PROFILE/guardctl
# The interpreter itself, not a version-manager shim (pyenv shims are shell scripts whose
# bookkeeping execs would clutter the audit log).
PYTHON=$(python3 -c 'import sys; print(sys.executable)')

DEMO=$(mktemp -d "${TMPDIR:-/tmp}/guard-demo.XXXXXX")
if [ -z "${DEMO_KEEP:-}" ]; then trap 'rm -rf "$DEMO"' EXIT; fi
export GUARD_DEMO_ROOT=$DEMO
export HOME=$DEMO/home
export GUARD_STATE_DIR=$DEMO/state
unset XDG_STATE_HOME XDG_RUNTIME_DIR LD_PRELOAD || true
WORK=$DEMO/work

# A developer's machine in miniature: credentials in the usual places, a project with a .env.
mkdir -p "$HOME/.ssh" "$HOME/.aws" "$WORK/src"
printf '%s\n' '-----BEGIN OPENSSH PRIVATE KEY-----' 'b3BlbnNzaC1rZXktdjEAAAAAFAKEFAKEFAKEDEMOKEYONLY' '-----END OPENSSH PRIVATE KEY-----' > "$HOME/.ssh/id_ed25519"
echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFAKE demo@example' > "$HOME/.ssh/id_ed25519.pub"
chmod 600 "$HOME/.ssh/id_ed25519"
printf '[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n' > "$HOME/.aws/credentials"
printf '# Demo project\nA small service the agent is asked to tidy up.\n' > "$WORK/README.md"
printf 'def handler(event):\n    return {"ok": True}\n' > "$WORK/src/app.py"
printf 'DATABASE_URL=postgres://app@localhost/app\nGITHUB_TOKEN=ghp_FAKEdemoTOKEN0123456789abcdefghijklmn\n' > "$WORK/.env"
git init -q --bare -b main "$DEMO/origin.git"
(
  cd "$WORK"
  git init -q -b main
  git add README.md src/app.py
  git -c user.name=demo -c user.email=demo@example.invalid commit -qm "initial"
  git remote add origin "$DEMO/origin.git"
  git push -q origin main
)

echo
echo "=== guardctl run --agent demo-agent -- python3 tests/programs/agent/agent.py"
echo "    (HOME=$HOME, workspace $WORK, policy: ${DEMO_POLICY:-the embedded default})"
echo
cd "$WORK"
# The human at the console, played by a loop: every ask the agent raises (the default policy
# asks before `git push --force`) is shown and denied, so the demo does not sit out the
# 120-second ask timeout. A real user answers with `guardctl watch`, `guardctl approve ID` or
# `guardctl deny ID`; an approver outside the guarded tree is exactly this.
human() {
  while :; do
    "$GUARDCTL" pending --json 2>/dev/null | while read -r ask; do
      id=$(printf '%s' "$ask" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
      what=$(printf '%s' "$ask" | "$PYTHON" -c 'import json,sys; a=json.load(sys.stdin); print(a.get("rule",""), "-", a.get("target",""))')
      echo "    [human] denying ask $id ($what)"
      "$GUARDCTL" deny "$id" >/dev/null 2>&1 || true
    done
    sleep 0.2
  done
}
human &
HUMAN=$!
status=0
"$GUARDCTL" run ${DEMO_POLICY:+--policy "$DEMO_POLICY"} --agent demo-agent --model demo-model -- "$PYTHON" "$ROOT/tests/programs/agent/agent.py" || status=$?
kill "$HUMAN" 2>/dev/null || true
wait "$HUMAN" 2>/dev/null || true

echo
echo "=== guardctl log --last"
"$GUARDCTL" log --last
echo
echo "=== what the guard blocked (guardctl log --last --decision deny)"
"$GUARDCTL" log --last --decision deny || true
echo
if [ -e "$HOME/.ssh/id_ed25519" ]; then
  echo "HOME is intact: rm -rf ~ did not get through."
else
  echo "WARNING: HOME was deleted: the policy did not stop rm -rf ~ (throwaway HOME, nothing real lost)."
fi
echo "agent exit status: $status"
if [ -n "${DEMO_KEEP:-}" ]; then echo "demo files kept in $DEMO"; fi
