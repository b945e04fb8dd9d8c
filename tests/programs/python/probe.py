"""Performs one guarded operation per command-line op and prints "OK ..." or
"ERR <ExceptionName> <errno>", so the end-to-end tests can assert what Python really saw."""
import os
import pathlib
import socket
import subprocess
import sys


def report(fn):
    try:
        r = fn()
        print("OK" if r is None else f"OK {r}")
    except OSError as e:
        print(f"ERR {type(e).__name__} {e.errno}")


def main():
    op, args = sys.argv[1], sys.argv[2:]
    if op == "open":
        report(lambda: open(args[0]).close())
    elif op == "open-write":
        report(lambda: open(args[0], "w").close())
    elif op == "os-open":
        report(lambda: os.close(os.open(args[0], os.O_RDONLY)))
    elif op == "pathlib":
        report(lambda: len(pathlib.Path(args[0]).read_text()))
    elif op == "unlink":
        report(lambda: os.unlink(args[0]))
    elif op == "run":
        # subprocess default: vfork + execv in the child.
        report(lambda: subprocess.run(args, check=False).returncode)
    elif op == "run-empty-env":
        report(lambda: subprocess.run(args, env={}, capture_output=True, text=True).stdout.replace("\n", ";"))
    elif op == "run-no-close-fds":
        # close_fds=False makes CPython use posix_spawn.
        report(lambda: subprocess.run(args, close_fds=False).returncode)
    elif op == "system":
        report(lambda: os.waitstatus_to_exitcode(os.system(args[0])))
    elif op == "posix-spawn":
        def spawn():
            pid = os.posix_spawn(args[0], args, {})
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        report(spawn)
    elif op == "connect":
        def conn():
            with socket.socket() as s:
                s.connect((args[0], int(args[1])))
        report(conn)
    elif op == "udp-sendto":
        def send():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"ping", (args[0], int(args[1])))
        report(send)
    else:
        print("unknown op", op, file=sys.stderr)
        sys.exit(2)


main()
